//! The `llm` kind: a call to an OpenAI-compatible chat-completions API, streamed.
//!
//! The messages are the input's `messages`, or `config.prompt` rendered with the input,
//! after `config.system`. The answer is streamed (`"stream": true`): each piece of text is
//! a `partial` event `{"delta": "..."}` as it arrives. The output is
//! `{"content", "finish_reason", "usage": {"prompt_tokens", "completion_tokens", "cost"?},
//! "tool_calls"?}`; with `config.response_format`, `content` is the parsed JSON.
//!
//! With `config.tools`, the model may call those agents: each call runs as a child task,
//! its result goes back to the model as a `tool` message, and the model is asked again,
//! until it answers without calls (at most `max_turns` turns). The run is durable: each
//! model turn is a step `turn-N`, each call a spawn step `turn-N/call-I`, and the wait for
//! a turn's calls a join `turn-N/tools` — while the children run the task is `waiting` and
//! holds no slot, and the next run replays the turns already paid for from their steps.
//!
//! Errors: 429 is rate limited (honouring `Retry-After`); 408, 5xx, timeouts, connection
//! errors and a stream cut short are retryable; other 4xx and an answer that breaks the
//! protocol (`malformed_response`) are permanent. The API key is read from the server's
//! environment (`config.api_key_env`) and appears in no message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::llm::{LlmAgentConfig, TokenUsage};
use switchyard_core::step::{StepDraft, StepOutcome, refusals};
use switchyard_core::task::TaskError;
use switchyard_core::wait::{Wait, WaitKind};
use switchyard_core::{TaskId, Timestamp, template};
use switchyard_engine::Engine;
use switchyard_engine::tasks::SubmitRequest;
use switchyard_engine::worker_session::{StepRefusal, WaitAnswer, WorkerSession};

use super::http::{classify_transport, parse_retry_after};
use super::{HostEnvironment, KindResult, TaskContext};

/// Most bytes of answer text and tool-call arguments one model turn may stream.
pub const MAX_CONTENT_BYTES: usize = 8 << 20;
/// Longest line (and event) of the stream.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most tool calls in one answer.
const MAX_TOOL_CALLS: usize = 128;
/// What is read of an error response, and quoted of it.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
const SNIPPET_CHARS: usize = 500;

/// Error codes of the kind (besides `http_<status>`, `timeout` and `network`).
pub mod codes {
    /// `config.api_key_env` names a variable the server's environment does not have.
    pub const MISSING_API_KEY: &str = "missing_api_key";
    /// The key cannot be sent in an HTTP header.
    pub const INVALID_API_KEY: &str = "invalid_api_key";
    /// The provider's answer breaks the protocol (a chunk that is not JSON, say).
    pub const MALFORMED_RESPONSE: &str = "malformed_response";
    /// The stream ended before the answer did.
    pub const INCOMPLETE_RESPONSE: &str = "incomplete_response";
    /// The provider reported an error inside the stream.
    pub const PROVIDER_ERROR: &str = "provider_error";
    pub const RESPONSE_TOO_LARGE: &str = "response_too_large";
    /// Neither the input's `messages` nor a `prompt` give the conversation.
    pub const INVALID_INPUT: &str = "invalid_input";
    pub const TEMPLATE_ERROR: &str = "template_error";
    /// The model still asked for tools after `max_turns` turns.
    pub const TOO_MANY_TURNS: &str = "too_many_turns";
    /// `config.tools` names an agent that does not exist.
    pub const UNKNOWN_TOOL: &str = "unknown_tool";
    /// The run ended in a durable wait for its tool calls: not an outcome, the session
    /// has already let go of the attempt, so nothing records it.
    pub const SUSPENDED: &str = "suspended";
}

fn malformed(message: impl Into<String>) -> TaskError {
    TaskError::permanent(codes::MALFORMED_RESPONSE, message)
}

pub struct LlmKind {
    client: reqwest::Client,
    environment: HostEnvironment,
    engine: Arc<Engine>,
    session: WorkerSession,
}

impl LlmKind {
    /// `session` is the runtime's: tool calls are steps, spawns and waits of the attempts
    /// it holds.
    pub fn new(environment: HostEnvironment, engine: Arc<Engine>, session: WorkerSession) -> Self {
        let client = super::outbound_client();
        LlmKind {
            client,
            environment,
            engine,
            session,
        }
    }

    pub async fn run(&self, ctx: TaskContext<'_>) -> KindResult {
        let config = ctx
            .spec
            .llm_config()
            .map_err(|e| TaskError::permanent("bad_config", e.message))?;
        let key = self.api_key(&config)?;
        let mut messages = initial_messages(&config, &ctx)?;
        let tools = self.tool_definitions(&config).await?;
        // Only a run that may call tools has turns worth keeping: without tools the first
        // answer is the output.
        let durable = !tools.is_empty();
        let memoized = if durable {
            self.memoized_turns(&ctx).await?
        } else {
            HashMap::new()
        };
        let request = ChatRequest {
            config: &config,
            key: &key,
            tools: &tools,
        };
        let mut usage = TokenUsage::default();
        let mut calls_made = Vec::new();
        for turn in 1..=config.max_turns() {
            let step = format!("turn-{turn}");
            let answer = match memoized.get(&step) {
                Some(answer) => answer.clone(),
                None => {
                    let started_at = Timestamp::now();
                    let answer = self.complete(&ctx, &request, &messages).await?;
                    log_turn(&ctx, turn, &answer).await;
                    if durable {
                        self.record_turn(&ctx, &step, &answer, started_at).await?;
                    }
                    answer
                }
            };
            usage.add(answer.usage);
            if answer.tool_calls.is_empty() || !durable {
                return output(&config, answer, usage, calls_made);
            }
            if turn == config.max_turns() {
                break;
            }
            messages.push(answer.assistant_message());
            for (call, reply) in self.call_tools(&ctx, &config, turn, &answer).await? {
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": reply.content,
                }));
                calls_made.push(reply.record);
            }
        }
        Err(TaskError::permanent(
            codes::TOO_MANY_TURNS,
            format!(
                "the model still asked for tools after {} turns (config.max_turns)",
                config.max_turns()
            ),
        ))
    }

    fn api_key(&self, config: &LlmAgentConfig) -> Result<String, TaskError> {
        let name = &config.api_key_env;
        let key = self
            .environment
            .get(name)
            .and_then(|v| v.to_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                TaskError::permanent(
                    codes::MISSING_API_KEY,
                    format!(
                        "the environment variable {name} (config.api_key_env) is not set in the server's environment"
                    ),
                )
            })?;
        Ok(key.to_owned())
    }

    /// The agents of `config.tools` as the model sees them: functions whose parameters
    /// are the agent's input schema.
    async fn tool_definitions(&self, config: &LlmAgentConfig) -> Result<Vec<Value>, TaskError> {
        let mut tools = Vec::with_capacity(config.tools.len());
        for name in &config.tools {
            let entry = match self.engine.agents().get(name).await {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    return Err(TaskError::permanent(
                        codes::UNKNOWN_TOOL,
                        format!("config.tools names the agent {name:?}, which does not exist"),
                    ));
                }
                Err(e) => return Err(TaskError::retryable("internal", e.message)),
            };
            let spec = entry.spec();
            // A function takes an object of arguments: other schemas say too little.
            let parameters = spec
                .input_schema
                .clone()
                .filter(|s| s.get("type").and_then(Value::as_str) == Some("object"))
                .unwrap_or_else(|| json!({"type": "object"}));
            let description = spec
                .description
                .clone()
                .unwrap_or_else(|| format!("Runs the agent {name}."));
            tools.push(json!({
                "type": "function",
                "function": {"name": name, "description": description, "parameters": parameters},
            }));
        }
        Ok(tools)
    }

    /// The turns earlier runs of the task recorded.
    async fn memoized_turns(
        &self,
        ctx: &TaskContext<'_>,
    ) -> Result<HashMap<String, Answer>, TaskError> {
        let steps = self
            .session
            .steps_before(ctx.attempt.task_id, ctx.attempt.attempt)
            .await
            .map_err(|e| TaskError::retryable("internal", e.message))?;
        Ok(steps
            .into_iter()
            .filter(|(name, _)| name.starts_with("turn-") && !name.contains('/'))
            // A turn kept in another shape is asked again.
            .filter_map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
            .collect())
    }

    async fn record_turn(
        &self,
        ctx: &TaskContext<'_>,
        step: &str,
        answer: &Answer,
        started_at: Timestamp,
    ) -> Result<(), TaskError> {
        let output = serde_json::to_value(answer)
            .map_err(|e| TaskError::permanent("internal", e.to_string()))?;
        let draft = StepDraft {
            task_id: ctx.attempt.task_id,
            attempt: ctx.attempt.attempt,
            name: step.to_owned(),
            outcome: StepOutcome::Succeeded(output),
            started_at,
            finished_at: Timestamp::now(),
        };
        match self.session.record_step(draft).await {
            Ok(Ok(())) => Ok(()),
            // Too large to keep: a later run asks the model again.
            Ok(Err(refusal)) if refusal.code == refusals::OUTPUT_TOO_LARGE => {
                ctx.events
                    .emit(EventBody::Log {
                        level: LogLevel::Warn,
                        message: format!("{step} is not kept as a step: {}", refusal.message),
                    })
                    .await;
                Ok(())
            }
            Ok(Err(refusal)) => Err(refused(refusal)),
            Err(e) => Err(TaskError::retryable("internal", e.message)),
        }
    }

    /// Runs a turn's tool calls as child tasks and waits for them; each call's reply,
    /// in order. Ends the run (as [`codes::SUSPENDED`]) while children are unfinished.
    async fn call_tools<'c>(
        &self,
        ctx: &TaskContext<'_>,
        config: &LlmAgentConfig,
        turn: u32,
        answer: &'c Answer,
    ) -> Result<Vec<(&'c ToolCall, ToolReply)>, TaskError> {
        let (task_id, attempt) = (ctx.attempt.task_id, ctx.attempt.attempt);
        let mut replies: Vec<Option<ToolReply>> = vec![None; answer.tool_calls.len()];
        let mut spawned: Vec<(usize, TaskId)> = Vec::new();
        for (i, call) in answer.tool_calls.iter().enumerate() {
            let arguments = parse_arguments(&call.arguments);
            if !config.tools.contains(&call.name) {
                replies[i] = Some(ToolReply::error(
                    call,
                    "unavailable",
                    format!("the tool {:?} is not available", call.name),
                ));
                continue;
            }
            let input = match arguments {
                Ok(input) => input,
                Err(e) => {
                    replies[i] = Some(ToolReply::error(
                        call,
                        "invalid_arguments",
                        format!("the arguments are not valid JSON: {e}"),
                    ));
                    continue;
                }
            };
            let req = SubmitRequest {
                agent: call.name.clone(),
                input,
                ..SubmitRequest::default()
            };
            let name = format!("turn-{turn}/call-{i}");
            match self.session.spawn(task_id, attempt, name, req).await {
                Ok(Ok(child)) => spawned.push((i, child)),
                Ok(Err(refusal)) if is_fatal(&refusal) => return Err(refused(refusal)),
                // The child was refused (its input does not fit its agent, say): the model
                // is told why.
                Ok(Err(refusal)) => {
                    replies[i] = Some(ToolReply::error(call, refusal.code, refusal.message));
                }
                Err(e) => return Err(TaskError::retryable("internal", e.message)),
            }
        }
        if !spawned.is_empty() {
            let wait = Wait {
                children: spawned.iter().map(|(_, id)| *id).collect(),
                ..Wait::named(WaitKind::Children, format!("turn-{turn}/tools"))
            };
            let results = match self.session.wait(task_id, attempt, wait).await {
                Ok(Ok(WaitAnswer::Ready(results))) => results,
                Ok(Ok(WaitAnswer::Suspended)) => {
                    return Err(TaskError::retryable(
                        codes::SUSPENDED,
                        "the task waits for its tool calls",
                    ));
                }
                Ok(Ok(WaitAnswer::TimedOut)) => {
                    return Err(TaskError::retryable(
                        "internal",
                        "a wait for child tasks timed out",
                    ));
                }
                Ok(Err(refusal)) => return Err(refused(refusal)),
                Err(e) => return Err(TaskError::retryable("internal", e.message)),
            };
            let by_id: HashMap<String, &Value> = results
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| Some((r.get("task_id")?.as_str()?.to_owned(), r)))
                .collect();
            for (i, child) in spawned {
                let call = &answer.tool_calls[i];
                replies[i] = Some(match by_id.get(&child.to_string()) {
                    Some(result) => ToolReply::child(call, child, result),
                    None => {
                        ToolReply::error(call, "missing", "the tool's result is missing".into())
                    }
                });
            }
        }
        Ok(answer
            .tool_calls
            .iter()
            .zip(replies)
            .map(|(call, reply)| {
                let reply = reply.unwrap_or_else(|| {
                    ToolReply::error(call, "missing", "the tool's result is missing".into())
                });
                (call, reply)
            })
            .collect())
    }

    /// One model turn: the request, and its streamed answer.
    async fn complete(
        &self,
        ctx: &TaskContext<'_>,
        request: &ChatRequest<'_>,
        messages: &[Value],
    ) -> Result<Answer, TaskError> {
        let config = request.config;
        let mut body = json!({
            "model": config.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(t) = config.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(max) = config.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if let Some(schema) = &config.response_format {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema},
            });
        }
        if !request.tools.is_empty() {
            body["tools"] = json!(request.tools);
        }
        let mut auth = HeaderValue::try_from(format!("Bearer {}", request.key)).map_err(|_| {
            TaskError::permanent(
                codes::INVALID_API_KEY,
                format!(
                    "the value of {} cannot be sent in an HTTP header",
                    config.api_key_env
                ),
            )
        })?;
        auth.set_sensitive(true);
        let url = config.chat_url();
        let response = self
            .client
            .post(&url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "text/event-stream")
            .timeout(Duration::from_millis(ctx.spec.timeout_ms))
            .json(&body)
            .send()
            .await
            .map_err(|e| scrub_error(classify_transport(e), request.key))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = parse_retry_after(response.headers().get(RETRY_AFTER));
            let text = read_limited(response, MAX_ERROR_BODY_BYTES, true, request.key).await?;
            let message = scrub(
                &format!("{url} answered {status}: {}", error_snippet(&text)),
                request.key,
            );
            let code = format!("http_{}", status.as_u16());
            return Err(match status.as_u16() {
                429 => TaskError {
                    code,
                    ..TaskError::rate_limited(message, retry_after)
                },
                408 | 500..=599 => TaskError::retryable(code, message),
                _ => TaskError::permanent(code, message),
            });
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            // A provider that does not stream answers with the whole completion at once.
            let text = read_limited(response, MAX_CONTENT_BYTES, false, request.key).await?;
            let answer = parse_completion(&text)?;
            if !answer.content.is_empty() {
                emit_delta(ctx, &answer.content).await;
            }
            return Ok(answer);
        }
        self.read_stream(ctx, response, request.key).await
    }

    async fn read_stream(
        &self,
        ctx: &TaskContext<'_>,
        mut response: reqwest::Response,
        key: &str,
    ) -> Result<Answer, TaskError> {
        let mut events = SseEvents::default();
        let mut answer = StreamedAnswer::default();
        let mut pending = Vec::new();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| scrub_error(classify_transport(e), key))?;
            match &chunk {
                Some(bytes) => events.push(bytes, &mut pending)?,
                None => events.finish(&mut pending),
            }
            for data in pending.drain(..) {
                if data == "[DONE]" {
                    return answer.done(true);
                }
                if let Some(delta) = answer.apply(&data, key)? {
                    emit_delta(ctx, &delta).await;
                }
            }
            if chunk.is_none() {
                // Some servers end without `[DONE]`: the answer counts if it has ended.
                return answer.done(false);
            }
        }
    }
}

struct ChatRequest<'a> {
    config: &'a LlmAgentConfig,
    key: &'a str,
    tools: &'a [Value],
}

/// A model turn's answer, as a step keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Answer {
    content: String,
    finish_reason: Option<String>,
    usage: TokenUsage,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ToolCall {
    id: String,
    name: String,
    /// JSON text, as the model wrote it.
    arguments: String,
}

impl Answer {
    /// The assistant message that asked for the tool calls, for the next request.
    fn assistant_message(&self) -> Value {
        let calls: Vec<Value> = self
            .tool_calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })
            })
            .collect();
        let content = if self.content.is_empty() {
            Value::Null
        } else {
            Value::String(self.content.clone())
        };
        json!({"role": "assistant", "content": content, "tool_calls": calls})
    }
}

/// What a tool call gave: the `tool` message's content for the model, and the record of
/// the call in the output's `tool_calls`.
#[derive(Clone, Debug)]
struct ToolReply {
    content: String,
    record: Value,
}

impl ToolReply {
    fn error(call: &ToolCall, code: &str, message: String) -> ToolReply {
        ToolReply {
            content: json!({"error": {"code": code, "message": message}}).to_string(),
            record: json!({
                "id": call.id,
                "name": call.name,
                "arguments": parse_arguments(&call.arguments).unwrap_or(Value::String(call.arguments.clone())),
                "status": code,
            }),
        }
    }

    /// From the child's result in the join (see `switchyard_core::wait::child_result`).
    fn child(call: &ToolCall, child: TaskId, result: &Value) -> ToolReply {
        let status = result.get("status").cloned().unwrap_or(Value::Null);
        let content = match result.get("output") {
            Some(output) if status == "succeeded" => output.to_string(),
            _ => json!({
                "error": result.get("error").cloned().unwrap_or(Value::Null),
                "status": status,
            })
            .to_string(),
        };
        ToolReply {
            content,
            record: json!({
                "id": call.id,
                "name": call.name,
                "arguments": parse_arguments(&call.arguments).unwrap_or(Value::Null),
                "task_id": child,
                "status": status,
            }),
        }
    }
}

/// A call's arguments as the child's input; empty means none (`{}`).
fn parse_arguments(text: &str) -> Result<Value, serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text)
}

/// Refusals that end the run instead of being told to the model.
fn is_fatal(refusal: &StepRefusal) -> bool {
    matches!(
        refusal.code,
        refusals::LEASE_LOST | refusals::TOO_MANY_STEPS | refusals::INVALID_STEP
    ) || refusal.code == switchyard_core::wait::codes::TOO_MANY_CHILDREN
}

fn refused(refusal: StepRefusal) -> TaskError {
    if refusal.code == refusals::LEASE_LOST {
        TaskError::retryable(refusal.code, refusal.message)
    } else {
        TaskError::permanent(refusal.code, refusal.message)
    }
}

/// The conversation of the first turn: `config.system`, then the input's `messages` or
/// `config.prompt` rendered with `input`, `task_id` and `attempt`.
fn initial_messages(
    config: &LlmAgentConfig,
    ctx: &TaskContext<'_>,
) -> Result<Vec<Value>, TaskError> {
    let input = &ctx.attempt.input;
    let mut messages = Vec::new();
    if let Some(system) = &config.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    match (input.get("messages"), &config.prompt) {
        (Some(given), _) => {
            let list = given.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
                TaskError::permanent(
                    codes::INVALID_INPUT,
                    "input.messages must be a non-empty array of chat messages",
                )
            })?;
            for (i, m) in list.iter().enumerate() {
                if m.get("role").and_then(Value::as_str).is_none() {
                    return Err(TaskError::permanent(
                        codes::INVALID_INPUT,
                        format!("input.messages[{i}] must be an object with a string `role`"),
                    ));
                }
            }
            messages.extend(list.iter().cloned());
        }
        (None, Some(prompt)) => {
            let context = json!({
                "input": input,
                "task_id": ctx.attempt.task_id.to_string(),
                "attempt": ctx.attempt.attempt,
            });
            let text = template::render("config.prompt", prompt, &context)
                .map_err(|e| TaskError::permanent(codes::TEMPLATE_ERROR, e.to_string()))?;
            messages.push(json!({"role": "user", "content": text}));
        }
        (None, None) => {
            return Err(TaskError::permanent(
                codes::INVALID_INPUT,
                "the input has no `messages` and the agent no `prompt` (config.prompt)",
            ));
        }
    }
    Ok(messages)
}

/// The task's output from the last answer and the whole run's usage.
fn output(
    config: &LlmAgentConfig,
    answer: Answer,
    usage: TokenUsage,
    calls_made: Vec<Value>,
) -> KindResult {
    let content = match &config.response_format {
        None => Value::String(answer.content),
        Some(_) => serde_json::from_str(&answer.content).map_err(|e| {
            let snippet: String = answer.content.chars().take(SNIPPET_CHARS).collect();
            TaskError::permanent(
                switchyard_core::task::codes::INVALID_OUTPUT,
                format!(
                    "the answer is not JSON, though config.response_format asks for it ({e}; finish_reason {}): {snippet}",
                    answer.finish_reason.as_deref().unwrap_or("none")
                ),
            )
        })?,
    };
    let mut out = json!({
        "content": content,
        "finish_reason": answer.finish_reason,
        "usage": config.usage_json(usage),
    });
    if !calls_made.is_empty() {
        out["tool_calls"] = Value::Array(calls_made);
    }
    Ok(out)
}

async fn emit_delta(ctx: &TaskContext<'_>, delta: &str) {
    ctx.events
        .emit(EventBody::Partial {
            data: json!({ "delta": delta }),
        })
        .await;
}

async fn log_turn(ctx: &TaskContext<'_>, turn: u32, answer: &Answer) {
    let mut message = format!(
        "turn {turn}: {} prompt + {} completion tokens, finish_reason {}",
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        answer.finish_reason.as_deref().unwrap_or("none"),
    );
    if !answer.tool_calls.is_empty() {
        let names: Vec<&str> = answer.tool_calls.iter().map(|c| c.name.as_str()).collect();
        message.push_str(&format!(", calls {}", names.join(", ")));
    }
    ctx.events
        .emit(EventBody::Log {
            level: LogLevel::Info,
            message,
        })
        .await;
}

/// The body, up to `max` bytes: beyond it, cut (`truncate`, for error bodies) or refused.
async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
    truncate: bool,
    key: &str,
) -> Result<String, TaskError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| scrub_error(classify_transport(e), key))?
    {
        if body.len() + chunk.len() > max {
            if truncate {
                body.extend_from_slice(&chunk[..max - body.len()]);
                break;
            }
            return Err(TaskError::permanent(
                codes::RESPONSE_TOO_LARGE,
                format!("the response exceeds {max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The provider's own message (`{"error": {"message": ...}}`) or the start of the body.
fn error_snippet(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("message").and_then(Value::as_str).or(e.as_str()))
        .unwrap_or(body);
    message.trim().chars().take(SNIPPET_CHARS).collect()
}

/// `text` without the key, should a provider quote it back.
fn scrub(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "***")
    }
}

fn scrub_error(mut e: TaskError, key: &str) -> TaskError {
    e.message = scrub(&e.message, key);
    e
}

/// A whole (not streamed) chat completion.
fn parse_completion(text: &str) -> Result<Answer, TaskError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| malformed(format!("the completion is not JSON: {e}")))?;
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| malformed("the completion has no `choices`"))?;
    let message = choice
        .get("message")
        .ok_or_else(|| malformed("the completion's choice has no `message`"))?;
    let content = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(malformed("the completion's `content` is not a string")),
    };
    let mut tool_calls = Vec::new();
    for (i, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        tool_calls.push(ToolCall {
            id: call
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{i}"), str::to_owned),
            name: function
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            arguments: function
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(Answer {
        content,
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        usage: parse_usage(v.get("usage"))?.unwrap_or_default(),
        tool_calls,
    })
}

fn parse_usage(usage: Option<&Value>) -> Result<Option<TokenUsage>, TaskError> {
    let Some(usage) = usage.filter(|u| !u.is_null()) else {
        return Ok(None);
    };
    let count = |name: &str| match usage.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| malformed(format!("usage.{name} is not a token count: {v}"))),
    };
    Ok(Some(TokenUsage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
    }))
}

/// The `data` of Server-Sent Events, from the bytes of a stream (bounded lines).
#[derive(Default)]
struct SseEvents {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The data lines of the event being read.
    data: Option<String>,
}

impl SseEvents {
    fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), TaskError> {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(end);
            rest = &tail[1..];
            if self.line.len() + head.len() > MAX_LINE_BYTES {
                return Err(malformed(format!(
                    "a line of the stream is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            self.line.extend_from_slice(head);
            let line = std::mem::take(&mut self.line);
            self.line_ended(&line, out)?;
        }
        if self.line.len() + rest.len() > MAX_LINE_BYTES {
            return Err(malformed(format!(
                "a line of the stream is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// The stream ended: what was read of an event that was not closed by a blank line.
    fn finish(&mut self, out: &mut Vec<String>) {
        let line = std::mem::take(&mut self.line);
        let _ = self.line_ended(&line, out);
        out.extend(self.data.take());
    }

    fn line_ended(&mut self, line: &[u8], out: &mut Vec<String>) -> Result<(), TaskError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            out.extend(self.data.take());
            return Ok(());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| malformed("a line of the stream is not UTF-8"))?;
        // Other fields (`event`, `id`, `retry`) and comments (`: ...`) carry nothing here.
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            let data = self.data.get_or_insert_with(String::new);
            if data.len() + value.len() > MAX_LINE_BYTES {
                return Err(malformed(format!(
                    "an event of the stream is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value);
        }
        Ok(())
    }
}

/// An answer being assembled from `chat.completion.chunk`s.
#[derive(Default)]
struct StreamedAnswer {
    content: String,
    finish_reason: Option<String>,
    usage: Option<TokenUsage>,
    calls: Vec<ToolCall>,
    /// Bytes of content and arguments so far.
    bytes: usize,
    chunks: u64,
}

impl StreamedAnswer {
    /// Applies one chunk; returns its text, if it has any.
    fn apply(&mut self, data: &str, key: &str) -> Result<Option<String>, TaskError> {
        self.chunks += 1;
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            let snippet: String = data.chars().take(200).collect();
            malformed(format!(
                "chunk {} of the stream is not JSON ({e}): {}",
                self.chunks,
                scrub(&snippet, key)
            ))
        })?;
        let Some(chunk) = chunk.as_object() else {
            return Err(malformed(format!(
                "chunk {} of the stream is not a JSON object",
                self.chunks
            )));
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let text = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            let snippet: String = text.chars().take(SNIPPET_CHARS).collect();
            return Err(TaskError::retryable(
                codes::PROVIDER_ERROR,
                scrub(&format!("the provider reported an error: {snippet}"), key),
            ));
        }
        if let Some(usage) = parse_usage(chunk.get("usage"))? {
            self.usage = Some(usage);
        }
        let choices = match chunk.get("choices") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(choices)) => choices,
            Some(_) => {
                return Err(malformed(format!(
                    "chunk {}: `choices` is not an array",
                    self.chunks
                )));
            }
        };
        // One answer was asked for (no `n`): the first choice is it.
        let Some(choice) = choices
            .iter()
            .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        else {
            return Ok(None);
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta").filter(|d| !d.is_null()) else {
            return Ok(None);
        };
        if let Some(calls) = delta.get("tool_calls").filter(|c| !c.is_null()) {
            let calls = calls.as_array().ok_or_else(|| {
                malformed(format!(
                    "chunk {}: `tool_calls` is not an array",
                    self.chunks
                ))
            })?;
            for call in calls {
                self.apply_call(call)?;
            }
        }
        match delta.get("content") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => {
                self.grow(text.len())?;
                self.content.push_str(text);
                Ok(Some(text.clone()))
            }
            Some(_) => Err(malformed(format!(
                "chunk {}: `content` is not a string",
                self.chunks
            ))),
        }
    }

    /// A piece of a tool call: its `index` says which; `id` and `name` come first, the
    /// `arguments` in pieces.
    fn apply_call(&mut self, call: &Value) -> Result<(), TaskError> {
        let index = match call.get("index") {
            None => self.calls.len().saturating_sub(1),
            Some(i) => i.as_u64().ok_or_else(|| {
                malformed(format!(
                    "chunk {}: a tool call's `index` is not a number",
                    self.chunks
                ))
            })? as usize,
        };
        if index >= MAX_TOOL_CALLS {
            return Err(malformed(format!(
                "the answer has more than {MAX_TOOL_CALLS} tool calls"
            )));
        }
        if self.calls.len() <= index {
            self.calls.resize_with(index + 1, ToolCall::default);
        }
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let function = call.get("function");
        let id = text(call.get("id"));
        let name = text(function.and_then(|f| f.get("name")));
        let arguments = text(function.and_then(|f| f.get("arguments")));
        self.grow(id.len() + name.len() + arguments.len())?;
        let entry = &mut self.calls[index];
        if !id.is_empty() {
            entry.id = id;
        }
        entry.name.push_str(&name);
        entry.arguments.push_str(&arguments);
        Ok(())
    }

    fn grow(&mut self, more: usize) -> Result<(), TaskError> {
        self.bytes += more;
        if self.bytes > MAX_CONTENT_BYTES {
            return Err(TaskError::permanent(
                codes::RESPONSE_TOO_LARGE,
                format!("the answer exceeds {MAX_CONTENT_BYTES} bytes"),
            ));
        }
        Ok(())
    }

    /// The answer once the stream is over (`[DONE]` seen or not); one that never ended
    /// is incomplete.
    fn done(self, done_seen: bool) -> Result<Answer, TaskError> {
        let ended = done_seen || self.finish_reason.is_some() || self.usage.is_some();
        if !ended {
            return Err(TaskError::retryable(
                codes::INCOMPLETE_RESPONSE,
                format!(
                    "the stream ended after {} chunks without a finish_reason",
                    self.chunks
                ),
            ));
        }
        let tool_calls = self
            .calls
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                c
            })
            .collect();
        Ok(Answer {
            content: self.content,
            finish_reason: self.finish_reason,
            usage: self.usage.unwrap_or_default(),
            tool_calls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(pieces: &[&[u8]]) -> Vec<String> {
        let mut sse = SseEvents::default();
        let mut out = Vec::new();
        for p in pieces {
            sse.push(p, &mut out).unwrap();
        }
        sse.finish(&mut out);
        out
    }

    #[test]
    fn events_are_assembled_across_chunks_and_line_endings() {
        assert_eq!(
            events(&[b"data: {\"a\"", b":1}\n\ndata: [DONE]\n\n"]),
            ["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(
            events(&[
                b": keep-alive\r\nevent: x\r\ndata:1\r\ndata: 2\r\n\r\n",
                b"data: end"
            ]),
            ["1\n2", "end"]
        );
        let mut sse = SseEvents::default();
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let e = sse.push(&long, &mut Vec::new()).unwrap_err();
        assert_eq!(e.code, codes::MALFORMED_RESPONSE);
    }

    fn chunk(delta: Value, finish: Value) -> String {
        json!({"id": "c", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    }

    #[test]
    fn chunks_build_the_answer() {
        let mut a = StreamedAnswer::default();
        assert_eq!(
            a.apply(
                &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                "k"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            a.apply(&chunk(json!({"content": "Hel"}), Value::Null), "k")
                .unwrap(),
            Some("Hel".into())
        );
        a.apply(&chunk(json!({"content": "lo"}), json!("stop")), "k")
            .unwrap();
        a.apply(
            &json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
                .to_string(),
            "k",
        )
        .unwrap();
        let answer = a.done(true).unwrap();
        assert_eq!(answer.content, "Hello");
        assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
        assert_eq!(answer.usage.prompt_tokens, 3);
        assert!(answer.tool_calls.is_empty());
    }

    #[test]
    fn tool_calls_arrive_in_pieces() {
        let mut a = StreamedAnswer::default();
        let call = |v: Value| chunk(json!({"tool_calls": [v]}), Value::Null);
        a.apply(
            &call(json!({"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "echo", "arguments": ""}})),
            "k",
        )
        .unwrap();
        a.apply(
            &call(json!({"index": 0, "function": {"arguments": "{\"x\":"}})),
            "k",
        )
        .unwrap();
        a.apply(
            &call(json!({"index": 0, "function": {"arguments": "1}"}})),
            "k",
        )
        .unwrap();
        a.apply(
            &call(json!({"index": 1, "function": {"name": "other"}})),
            "k",
        )
        .unwrap();
        a.apply(&chunk(json!({}), json!("tool_calls")), "k")
            .unwrap();
        let answer = a.done(true).unwrap();
        assert_eq!(
            answer.tool_calls,
            [
                ToolCall {
                    id: "call_a".into(),
                    name: "echo".into(),
                    arguments: "{\"x\":1}".into()
                },
                ToolCall {
                    id: "call_1".into(),
                    name: "other".into(),
                    arguments: String::new()
                },
            ]
        );
        let message = answer.assistant_message();
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"x\":1}"
        );
        let mut a = StreamedAnswer::default();
        let e = a.apply(&call(json!({"index": 100000})), "k").unwrap_err();
        assert_eq!(e.code, codes::MALFORMED_RESPONSE);
    }

    #[test]
    fn broken_streams_are_classified() {
        let mut a = StreamedAnswer::default();
        let e = a.apply("{not json sk-secret", "sk-secret").unwrap_err();
        assert_eq!(e.code, codes::MALFORMED_RESPONSE);
        assert_eq!(e.class, switchyard_core::task::ErrorClass::Permanent);
        assert!(!e.message.contains("sk-secret"), "{}", e.message);
        let e = a
            .apply(&chunk(json!({"content": 5}), Value::Null), "k")
            .unwrap_err();
        assert_eq!(e.code, codes::MALFORMED_RESPONSE);
        let e = a
            .apply(
                &json!({"error": {"message": "overloaded"}}).to_string(),
                "k",
            )
            .unwrap_err();
        assert_eq!(e.code, codes::PROVIDER_ERROR);
        assert_eq!(e.class, switchyard_core::task::ErrorClass::Retryable);
        let mut cut = StreamedAnswer::default();
        cut.apply(&chunk(json!({"content": "Hel"}), Value::Null), "k")
            .unwrap();
        let e = cut.done(false).unwrap_err();
        assert_eq!(e.code, codes::INCOMPLETE_RESPONSE);
        assert_eq!(e.class, switchyard_core::task::ErrorClass::Retryable);
    }

    #[test]
    fn whole_completions_are_understood() {
        let a = parse_completion(
            &json!({"choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
            .to_string(),
        )
        .unwrap();
        assert_eq!(a.content, "hi");
        assert_eq!(a.usage.completion_tokens, 1);
        assert!(parse_completion("{}").is_err());
    }

    #[test]
    fn provider_messages_are_quoted_without_the_key() {
        assert_eq!(
            error_snippet(r#"{"error": {"message": "Incorrect API key provided: sk-1"}}"#),
            "Incorrect API key provided: sk-1"
        );
        assert_eq!(error_snippet("plain text"), "plain text");
        assert_eq!(scrub("key sk-1 here", "sk-1"), "key *** here");
    }
}
