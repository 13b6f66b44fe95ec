//! The `llm` kind against a local stand-in for an OpenAI-compatible provider: it answers
//! `POST /v1/chat/completions` with scripted replies (streamed `chat.completion.chunk`s,
//! error statuses, broken streams) and records the requests it gets.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::*;

/// One scripted answer of the provider.
enum Reply {
    /// A `text/event-stream` of these `data:` payloads (`[DONE]` included by the script).
    Events(Vec<String>),
    Status(StatusCode, Vec<(&'static str, &'static str)>, String),
}

#[derive(Clone, Default)]
struct Provider {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// The `Authorization` header and JSON body of each request, in order.
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Provider {
    async fn start() -> (String, Provider) {
        let provider = Provider::default();
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(provider.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/v1"), provider)
    }

    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.replies.lock().unwrap().extend(replies);
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn answer(State(p): State<Provider>, headers: HeaderMap, body: String) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    p.requests.lock().unwrap().push((auth, body));
    let reply = p.replies.lock().unwrap().pop_front();
    match reply {
        // Each event is its own piece of the body, as a provider sends them.
        Some(Reply::Events(events)) => {
            let frames = events
                .into_iter()
                .map(|data| Ok::<_, Infallible>(format!("data: {data}\n\n")));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(frames)))
                .unwrap()
        }
        Some(Reply::Status(status, headers, body)) => {
            let mut response = (status, body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, "nothing scripted").into_response(),
    }
}

fn chunk(delta: Value, finish_reason: Value) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    })
    .to_string()
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}
    })
    .to_string()
}

/// An answer streamed token by token, then its usage and `[DONE]`.
fn text(tokens: &[&str], prompt_tokens: u64) -> Reply {
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        tokens
            .iter()
            .map(|t| chunk(json!({"content": t}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    events.push(usage_chunk(prompt_tokens, tokens.len() as u64));
    events.push("[DONE]".into());
    Reply::Events(events)
}

/// An answer asking for tool calls `(id, name, arguments)`, the arguments in two pieces.
fn tool_calls(calls: &[(&str, &str, Value)]) -> Reply {
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": null}),
        Value::Null,
    )];
    for (i, (id, name, arguments)) in calls.iter().enumerate() {
        let arguments = arguments.to_string();
        let (a, b) = arguments.split_at(arguments.len() / 2);
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                "function": {"name": name, "arguments": a}}]}),
            Value::Null,
        ));
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
            Value::Null,
        ));
    }
    events.push(chunk(json!({}), json!("tool_calls")));
    events.push(usage_chunk(20, 10));
    events.push("[DONE]".into());
    Reply::Events(events)
}

/// Sets `name` in this process's environment, which a server started afterwards hands to
/// its built-in worker. Each test uses names of its own, so none changes another's.
fn set_key(name: &str, value: &str) {
    // SAFETY: the variable is set before the server reading it starts, and no test reads
    // or writes it concurrently (the name is the caller's own).
    unsafe { std::env::set_var(name, value) };
}

fn llm_agent(name: &str, base: &str, key_env: &str, extra: Value) -> Value {
    let mut config = json!({"base_url": base, "model": "test-model", "api_key_env": key_env});
    let mut agent = json!({
        "name": name, "kind": "llm",
        "retry": {"max_attempts": 3, "base_ms": 20, "cap_ms": 100}
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "config" {
            for (ck, cv) in v.as_object().unwrap() {
                config[ck] = cv.clone();
            }
        } else {
            agent[k] = v.clone();
        }
    }
    agent["config"] = config;
    agent
}

fn message(task: &Value) -> &str {
    task["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn answers_stream_as_partial_events_with_usage_and_cost() {
    let key = "sk-test-streaming-0123456789";
    set_key("LLM_TEST_KEY_STREAMING", key);
    let (base, provider) = Provider::start().await;
    let app = TestApp::spawn().await;
    app.register(llm_agent(
        "writer",
        &base,
        "LLM_TEST_KEY_STREAMING",
        json!({"config": {
            "system": "Be brief.",
            "prompt": "Write about {{ input.topic }}.",
            "temperature": 0.5,
            "max_tokens": 64,
            "price_per_1k_tokens": {"prompt": 1.0, "completion": 2.0}
        }}),
    ))
    .await;

    let tokens = ["Hel", "lo", ", ", "wor", "ld"];
    provider.script([text(&tokens, 12)]);
    let done = app.run("writer", json!({"topic": "rust"})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let output = &done["output"];
    assert_eq!(output["content"], "Hello, world");
    assert_eq!(output["finish_reason"], "stop");
    assert_eq!(output["usage"]["prompt_tokens"], 12);
    assert_eq!(output["usage"]["completion_tokens"], 5);
    let cost = output["usage"]["cost"].as_f64().unwrap();
    assert!((cost - 0.022).abs() < 1e-9, "12/1000*1 + 5/1000*2: {cost}");
    assert!(output.get("tool_calls").is_none(), "{output}");

    let events = app.events_since(done["id"].as_str().unwrap(), 0).await;
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "partial")
        .map(|e| e["data"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, tokens, "every token, in order: {events:?}");

    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    let (auth, body) = &requests[0];
    assert_eq!(auth, &format!("Bearer {key}"));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Write about rust."}
        ])
    );
    assert!(body.get("tools").is_none() && body.get("response_format").is_none());

    // The input's own conversation is sent as it is, after the system message.
    let conversation = json!([
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And again?"}
    ]);
    provider.script([text(&["Again."], 30)]);
    let done = app.run("writer", json!({"messages": conversation})).await;
    assert_eq!(done["output"]["content"], "Again.", "{done}");
    let body = &provider.requests()[1].1;
    let mut expected = vec![json!({"role": "system", "content": "Be brief."})];
    expected.extend(conversation.as_array().unwrap().iter().cloned());
    assert_eq!(body["messages"], Value::Array(expected));

    // Neither messages nor a prompt variable: a template error, before any request.
    let done = app.run("writer", json!({"subject": "x"})).await;
    assert_eq!(done["status"], "dead");
    assert_eq!(done["error"]["code"], "template_error", "{done}");
    assert_eq!(provider.requests().len(), 2);

    // The definition names the variable; the key itself is nowhere in the API.
    let (status, agent) = app.get("/api/v1/agents/writer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["config"]["api_key_env"], "LLM_TEST_KEY_STREAMING");
    let (_, listed) = app.get("/api/v1/agents").await;
    for shown in [agent.to_string(), listed.to_string()] {
        assert!(!shown.contains(key), "{shown}");
    }

    // A variable the server's environment lacks fails for good, naming it.
    app.register(llm_agent(
        "keyless",
        &base,
        "LLM_TEST_KEY_NEVER_SET",
        json!({"config": {"prompt": "hi"}}),
    ))
    .await;
    let done = app.run("keyless", json!({})).await;
    assert_eq!(done["status"], "dead");
    assert_eq!(done["error"]["code"], "missing_api_key");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1, "permanent");
    assert!(message(&done).contains("LLM_TEST_KEY_NEVER_SET"), "{done}");
    assert_eq!(provider.requests().len(), 2, "no request without a key");
    app.stop().await;
}

#[tokio::test]
async fn provider_errors_are_retried_or_final_by_kind() {
    let key = "sk-test-errors-9876543210";
    set_key("LLM_TEST_KEY_ERRORS", key);
    let (base, provider) = Provider::start().await;
    let app = TestApp::spawn().await;
    app.register(llm_agent(
        "asker",
        &base,
        "LLM_TEST_KEY_ERRORS",
        json!({"config": {"prompt": "{{ input.q }}"}}),
    ))
    .await;

    // 429 with Retry-After: rate limited, retried no sooner than it says.
    provider.script([
        Reply::Status(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "1")],
            json!({"error": {"message": "Rate limit reached", "type": "requests"}}).to_string(),
        ),
        text(&["ok"], 3),
    ]);
    let done = app.run("asker", json!({"q": "a"})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["error"]["class"], "rate_limited");
    assert_eq!(attempts[0]["error"]["retry_after_ms"], 1000);
    assert!(
        attempts[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit reached")
    );
    let at = |a: &Value, field: &str| {
        switchyard_core::Timestamp::parse_rfc3339(a[field].as_str().unwrap()).unwrap()
    };
    let gap = at(&attempts[1], "started_at").since(at(&attempts[0], "finished_at"));
    assert!(gap >= 950, "Retry-After honoured: waited {gap} ms");

    // 500: retryable.
    provider.script([
        Reply::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![],
            "upstream broke".into(),
        ),
        text(&["fine"], 3),
    ]);
    let done = app.run("asker", json!({"q": "b"})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["error"]["class"], "retryable");
    assert_eq!(attempts[0]["error"]["code"], "http_500");
    assert_eq!(done["output"]["content"], "fine");

    // Other 4xx: permanent, with the provider's message but never the key.
    provider.script([Reply::Status(
        StatusCode::UNAUTHORIZED,
        vec![],
        json!({"error": {"message": format!("Incorrect API key provided: {key}")}}).to_string(),
    )]);
    let done = app.run("asker", json!({"q": "c"})).await;
    assert_eq!(done["status"], "dead");
    assert_eq!(done["error"]["code"], "http_401");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1);
    assert!(
        message(&done).contains("Incorrect API key provided"),
        "{done}"
    );
    assert!(!done.to_string().contains(key), "{done}");

    // A chunk that is not JSON: permanent, and clear about it. Tokens before it were
    // streamed as they came.
    provider.script([Reply::Events(vec![
        chunk(json!({"content": "Par"}), Value::Null),
        "{\"choices\": [oops".into(),
        "[DONE]".into(),
    ])]);
    let done = app.run("asker", json!({"q": "d"})).await;
    assert_eq!(done["status"], "dead");
    assert_eq!(done["error"]["code"], "malformed_response");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1, "permanent");
    assert!(message(&done).contains("not JSON"), "{done}");

    // A stream cut off before the answer ended: retryable.
    provider.script([
        Reply::Events(vec![chunk(json!({"content": "Hal"}), Value::Null)]),
        text(&["Whole"], 3),
    ]);
    let done = app.run("asker", json!({"q": "e"})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["error"]["code"], "incomplete_response");
    assert_eq!(done["output"]["content"], "Whole");
    app.stop().await;
}

#[tokio::test]
async fn json_answers_are_parsed_and_checked_against_the_schema() {
    set_key("LLM_TEST_KEY_JSON", "sk-json");
    let (base, provider) = Provider::start().await;
    let app = TestApp::spawn().await;
    let schema = json!({
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative"]}, "score": {"type": "number"}},
        "required": ["sentiment", "score"]
    });
    // `response_format` alone: it is also what `content` is checked against.
    app.register(llm_agent(
        "classify",
        &base,
        "LLM_TEST_KEY_JSON",
        json!({"config": {"prompt": "{{ input.text }}", "response_format": schema}}),
    ))
    .await;
    // An `output_schema` of the agent's own takes its place.
    app.register(llm_agent(
        "classify-strict",
        &base,
        "LLM_TEST_KEY_JSON",
        json!({
            "config": {"prompt": "{{ input.text }}", "response_format": schema},
            "output_schema": {"type": "object", "properties": {"score": {"minimum": 0.5}}}
        }),
    ))
    .await;

    provider.script([text(
        &["{\"sentiment\": ", "\"positive\", \"score\": 0.9}"],
        8,
    )]);
    let done = app.run("classify", json!({"text": "great"})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["output"]["content"],
        json!({"sentiment": "positive", "score": 0.9})
    );
    let body = &provider.requests()[0].1;
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}})
    );

    // JSON that breaks the schema: permanent, with where.
    provider.script([text(&["{\"sentiment\": \"meh\", \"score\": 1}"], 8)]);
    let done = app.run("classify", json!({"text": "hm"})).await;
    assert_eq!(done["status"], "dead", "{done}");
    assert_eq!(done["error"]["code"], "invalid_output");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1);
    let violations = done["error"]["details"]["violations"].to_string();
    assert!(violations.contains("/content/sentiment"), "{done}");

    // Not JSON at all: permanent too.
    provider.script([text(&["Sure! Here it is"], 8)]);
    let done = app.run("classify", json!({"text": "hm"})).await;
    assert_eq!(done["status"], "dead", "{done}");
    assert_eq!(done["error"]["code"], "invalid_output");
    assert!(message(&done).contains("not JSON"), "{done}");

    provider.script([text(&["{\"sentiment\": \"negative\", \"score\": 0.2}"], 8)]);
    let done = app.run("classify-strict", json!({"text": "bad"})).await;
    assert_eq!(done["status"], "dead", "{done}");
    assert!(
        done["error"]["details"]["violations"]
            .to_string()
            .contains("/content/score"),
        "{done}"
    );
    app.stop().await;
}

#[tokio::test]
async fn registration_rejects_bad_llm_configs_by_field() {
    let app = TestApp::spawn().await;
    let base = "http://127.0.0.1:9/v1";
    let cases = [
        (
            json!({"config": {"base_url": "ftp://x/v1"}}),
            "config.base_url",
        ),
        (json!({"config": {"model": ""}}), "config.model"),
        (
            json!({"config": {"api_key_env": "lower-case"}}),
            "config.api_key_env",
        ),
        (
            json!({"config": {"api_key_env": "SWITCHYARD__AUTH__JWT_SECRET"}}),
            "SWITCHYARD",
        ),
        (json!({"config": {"temperature": 3}}), "config.temperature"),
        (json!({"config": {"max_tokens": 0}}), "config.max_tokens"),
        (
            json!({"config": {"prompt": "{{ input.x "}}),
            "config.prompt",
        ),
        (
            json!({"config": {"tools": ["Not A Name"]}}),
            "config.tools[0]",
        ),
        (json!({"config": {"tools": ["bad-llm"]}}), "itself"),
        (json!({"config": {"max_turns": 0}}), "config.max_turns"),
        (
            json!({"config": {"price_per_1k_tokens": {"prompt": -1}}}),
            "price_per_1k_tokens",
        ),
        (
            json!({"config": {"response_format": {"type": 5}}}),
            "config.response_format",
        ),
        (json!({"config": {"api_key": "sk-inline"}}), "api_key"),
    ];
    for (extra, needle) in cases {
        let agent = llm_agent("bad-llm", base, "OPENAI_API_KEY", extra.clone());
        let (status, body) = app.post("/api/v1/agents", agent).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent"),
            "{extra}: {body}"
        );
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(needle), "{extra}: {body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/agents",
            json!({"name": "bad-llm", "kind": "llm", "config": {"model": "m"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("base_url"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn tool_calls_run_agents_as_child_tasks_until_the_model_answers() {
    set_key("LLM_TEST_KEY_TOOLS", "sk-tools");
    let (base, provider) = Provider::start().await;
    let app = TestApp::spawn().await;
    app.register(llm_agent(
        "assistant",
        &base,
        "LLM_TEST_KEY_TOOLS",
        json!({"config": {"prompt": "{{ input.q }}", "tools": ["echo"],
            "price_per_1k_tokens": {"prompt": 1.0, "completion": 1.0}}}),
    ))
    .await;
    provider.script([
        tool_calls(&[
            ("call_echo", "echo", json!({"text": "ping"})),
            ("call_other", "delete-everything", json!({})),
        ]),
        text(&["The echo ", "said ping."], 40),
    ]);
    let started = Instant::now();
    let done = app
        .run("assistant", json!({"q": "Use the echo tool."}))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(started.elapsed() < WAIT);
    let output = &done["output"];
    assert_eq!(output["content"], "The echo said ping.");
    // The run that called the tool ended in a wait (`suspended`) unless the child was
    // done first; either way no attempt failed.
    let attempts = done["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .all(|a| a["status"] == "suspended" || a["status"] == "succeeded"),
        "{done}"
    );
    assert_eq!(output["finish_reason"], "stop");
    // Both turns count: 20 + 40 prompt, 10 + 2 completion tokens.
    assert_eq!(output["usage"]["prompt_tokens"], 60, "{output}");
    assert_eq!(output["usage"]["completion_tokens"], 12, "{output}");
    let calls = output["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{output}");
    assert_eq!(calls[0]["name"], "echo");
    assert_eq!(calls[0]["arguments"], json!({"text": "ping"}));
    assert_eq!(calls[0]["status"], "succeeded");
    assert_eq!(calls[1]["status"], "unavailable");

    // The call ran as a child task of this one.
    let child = app.task(calls[0]["task_id"].as_str().unwrap()).await;
    assert_eq!(child["agent"], "echo");
    assert_eq!(child["parent_id"], done["id"], "{child}");
    assert_eq!(child["output"], json!({"text": "ping"}));

    let requests = provider.requests();
    assert_eq!(requests.len(), 2, "the first turn is kept, not asked again");
    let first = &requests[0].1;
    assert_eq!(
        first["tools"],
        json!([{"type": "function", "function": {
            "name": "echo",
            "description": "Returns its input as its output.",
            "parameters": {"type": "object"}
        }}])
    );
    let messages = requests[1].1["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_echo");
    assert_eq!(
        messages[1]["tool_calls"][0]["function"],
        json!({"name": "echo", "arguments": json!({"text": "ping"}).to_string()})
    );
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_call_id"], "call_echo");
    let echoed: Value = serde_json::from_str(messages[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(echoed, json!({"text": "ping"}));
    assert_eq!(messages[3]["tool_call_id"], "call_other");
    assert!(
        messages[3]["content"]
            .as_str()
            .unwrap()
            .contains("not available"),
        "{messages:?}"
    );

    // Each turn, spawn and join is a step of the task.
    let id = done["id"].as_str().unwrap();
    let (_, steps) = app.get(&format!("/api/v1/tasks/{id}/steps")).await;
    let names: Vec<&str> = steps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["turn-1", "turn-1/call-0", "turn-1/tools", "turn-2"],
        "{steps}"
    );

    // A model that keeps asking for tools is stopped at max_turns.
    app.register(llm_agent(
        "looper",
        &base,
        "LLM_TEST_KEY_TOOLS",
        json!({"config": {"prompt": "go", "tools": ["echo"], "max_turns": 1}}),
    ))
    .await;
    provider.script([tool_calls(&[("call_1", "echo", json!({}))])]);
    let done = app.run("looper", json!({})).await;
    assert_eq!(done["status"], "dead", "{done}");
    assert_eq!(done["error"]["code"], "too_many_turns");
    app.stop().await;
}
