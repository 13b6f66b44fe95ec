//! The Rust SDK's worker for the protocol conformance suite (`sdks/conformance/`): serves
//! the same agents as `sdks/python/examples/conformance_worker.py` and
//! `sdks/typescript/examples/conformance-worker.ts`, with the same names, schemas, timeouts
//! and retry policies, so one set of scenarios plays against all three SDKs.
//!
//! ```sh
//! SWITCHYARD_API_KEY=sy_… WORKER_NAME=rust-a switchyard-conformance-worker http://127.0.0.1:8080
//! ```
//!
//! Environment: `SWITCHYARD_API_KEY` (scope `worker`, required), `WORKER_NAME`,
//! `WORKER_SLOTS` (default 4). Drains on SIGTERM or SIGINT: takes nothing new, finishes the
//! running tasks, exits 0.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sdk::{AgentDecl, Level, RetryDecl, TaskContext, TaskError, WAIT_TIMEOUT, Worker};

/// `conf-sleep`'s per-attempt timeout; the scenarios' sleeps stay well below it, except the
/// timeout scenario's.
const SLEEP_TIMEOUT_MS: u64 = 6000;

/// The retry policy `conf-fail`, `conf-sleep` and `conf-steps` declare: one retry, soon.
const SCENARIO_RETRY: RetryDecl = RetryDecl {
    max_attempts: Some(2),
    base_ms: Some(100),
    cap_ms: Some(1000),
};

fn worker_name() -> String {
    std::env::var("WORKER_NAME").unwrap_or_default()
}

/// Returns its input, and which worker ran it.
async fn echo(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    Ok(json!({ "echo": input, "worker": worker_name() }))
}

/// Streams each of `parts` as partial output with progress, between two log lines.
async fn stream(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let parts = input["parts"]
        .as_array()
        .ok_or_else(|| TaskError::permanent("`parts` must be an array"))?;
    ctx.info(format!("streaming {} parts", parts.len())).await;
    for (i, part) in parts.iter().enumerate() {
        ctx.partial(part.clone()).await;
        ctx.progress(
            Some((i + 1) as f64 / parts.len() as f64),
            Some(format!("part {}", i + 1)),
        )
        .await;
    }
    ctx.log(Level::Warn, "stream finished").await;
    Ok(json!({ "parts": parts.len(), "worker": worker_name() }))
}

/// Fails with the error class named in `class`.
async fn fail(input: Value, _ctx: TaskContext) -> Result<Value, TaskError> {
    let message = input["message"].as_str().unwrap_or("conformance failure");
    let error = match input["class"].as_str() {
        Some("retryable") => TaskError::retryable(message),
        Some("permanent") => TaskError::permanent(message),
        Some("rate_limited") => TaskError::rate_limited(
            message,
            input["retry_after_ms"].as_u64().map(Duration::from_millis),
        ),
        other => return Err(TaskError::permanent(format!("unknown class {other:?}"))),
    };
    Err(match input["code"].as_str() {
        Some(code) => error.with_code(code),
        None => error,
    })
}

/// Sleeps `ms` milliseconds; stops early when the attempt is cancelled.
async fn sleep(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let ms = input["ms"].as_u64().unwrap_or(0);
    ctx.info(format!("sleeping {ms} ms")).await;
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
        _ = ctx.cancelled().cancelled() => {
            return Err(TaskError::retryable("cancelled while sleeping").with_code("cancelled"));
        }
    }
    Ok(json!({ "slept_ms": ms, "worker": worker_name() }))
}

/// Runs each of `steps` as a durable step returning which run ran it; fails once, on the
/// first attempt, after the step named `fail_after`.
async fn steps(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let names = input["steps"]
        .as_array()
        .ok_or_else(|| TaskError::permanent("`steps` must be an array"))?;
    let mut results = Vec::new();
    for name in names {
        let name = name
            .as_str()
            .ok_or_else(|| TaskError::permanent("step names are strings"))?;
        let run = ctx.attempt;
        if run == 1 && input["pause_in"].as_str() == Some(name) {
            // Long enough for the scenario to SIGKILL this worker here.
            ctx.info(format!("pausing in {name}")).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let result: Value = ctx
            .step(
                name,
                || async move { Ok(json!({ "step": name, "run": run })) },
            )
            .await?;
        results.push(result);
        if input["fail_after"].as_str() == Some(name) && ctx.attempt == 1 {
            return Err(
                TaskError::retryable(format!("failing after {name}")).with_code("after_step")
            );
        }
    }
    Ok(json!({ "results": results, "worker": worker_name() }))
}

/// Sleeps durably `sleep_ms`, then waits for the signal `signal` (up to `timeout_ms`).
async fn wait(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let sleep_ms = input["sleep_ms"].as_u64();
    if let Some(ms) = sleep_ms {
        ctx.sleep("nap", Duration::from_millis(ms)).await?;
    }
    let (mut payload, mut timed_out) = (Value::Null, false);
    if let Some(signal) = input["signal"].as_str() {
        let timeout = input["timeout_ms"].as_u64().map(Duration::from_millis);
        match ctx.wait_for_signal::<Value>(signal, timeout).await {
            Ok(p) => payload = p,
            Err(e) if e.code.as_deref() == Some(WAIT_TIMEOUT) => timed_out = true,
            Err(e) => return Err(e),
        }
    }
    Ok(json!({
        "slept": sleep_ms.is_some(), "signal": payload, "timed_out": timed_out, "run": ctx.attempt
    }))
}

/// Spawns a `conf-echo` child per message of `messages`, then joins them.
/// A file reference (`{"$file": id}`), which the web UI fills with an upload.
static FILE_SCHEMA: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    json!({"type": "object", "format": "file", "required": ["$file"],
           "properties": {"$file": {"type": "string"}}})
});

/// Reads the input file `doc`, stores its text in upper case as the artifact `upper.txt`.
async fn files(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let id = input["doc"]["$file"]
        .as_str()
        .ok_or_else(|| TaskError::permanent("`doc` must be a file reference"))?;
    let name = ctx.files().get(id).map(|f| f.name.clone());
    let content = String::from_utf8_lossy(&ctx.download(id).await?).into_owned();
    let artifact = ctx
        .upload("upper.txt", content.to_uppercase(), Some("text/plain"))
        .await?;
    Ok(json!({ "name": name, "content": content, "artifact": { "$file": artifact } }))
}

async fn parent(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let messages = input["messages"]
        .as_array()
        .ok_or_else(|| TaskError::permanent("`messages` must be an array"))?;
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        ids.push(
            ctx.spawn("conf-echo", json!({ "message": m }), None)
                .await?,
        );
    }
    let children: Vec<Value> = ctx
        .join(&ids)
        .await?
        .into_iter()
        .map(|child| match child {
            Ok(output) => output,
            Err(failure) => json!({ "failed": failure.status }),
        })
        .collect();
    Ok(json!({ "children": children, "ids": ids }))
}

fn object_schema(properties: Value, required: &[&str]) -> Option<Value> {
    Some(json!({ "type": "object", "properties": properties, "required": required }))
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            eprintln!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let Ok(key) = std::env::var("SWITCHYARD_API_KEY") else {
        eprintln!("set SWITCHYARD_API_KEY to an API key with the worker scope");
        std::process::exit(2);
    };
    let slots = std::env::var("WORKER_SLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut worker = Worker::connect(url, key)
        .declare(
            AgentDecl {
                description: Some("Returns its input.".into()),
                input_schema: object_schema(json!({"message": {"type": "string"}}), &["message"]),
                ..AgentDecl::new("conf-echo")
            },
            echo,
        )
        .declare(
            AgentDecl {
                description: Some(
                    "Streams `parts` as partial output, with logs and progress.".into(),
                ),
                input_schema: object_schema(json!({"parts": {"type": "array"}}), &["parts"]),
                ..AgentDecl::new("conf-stream")
            },
            stream,
        )
        .declare(
            AgentDecl {
                description: Some("Fails with the error class named in `class`.".into()),
                input_schema: object_schema(
                    json!({
                        "class": {"enum": ["retryable", "permanent", "rate_limited"]},
                        "message": {"type": "string"},
                        "code": {"type": "string"},
                        "retry_after_ms": {"type": "integer", "minimum": 0}
                    }),
                    &["class"],
                ),
                retry: Some(SCENARIO_RETRY),
                ..AgentDecl::new("conf-fail")
            },
            fail,
        )
        .declare(
            AgentDecl {
                description: Some(
                    "Runs `steps` as durable steps, failing once after `fail_after`, pausing before `pause_in`."
                        .into(),
                ),
                input_schema: object_schema(
                    json!({
                        "steps": {"type": "array", "items": {"type": "string"}},
                        "fail_after": {"type": "string"},
                        "pause_in": {"type": "string"}
                    }),
                    &["steps"],
                ),
                retry: Some(SCENARIO_RETRY),
                ..AgentDecl::new("conf-steps")
            },
            steps,
        )
        .declare(
            AgentDecl {
                description: Some(
                    "Sleeps durably `sleep_ms`, then waits for the signal `signal` (up to `timeout_ms`)."
                        .into(),
                ),
                input_schema: Some(json!({
                    "type": "object",
                    "properties": {
                        "sleep_ms": {"type": "integer", "minimum": 0},
                        "signal": {"type": "string"},
                        "timeout_ms": {"type": "integer", "minimum": 0}
                    },
                    "additionalProperties": false
                })),
                ..AgentDecl::new("conf-wait")
            },
            wait,
        )
        .declare(
            AgentDecl {
                description: Some(
                    "Spawns a `conf-echo` child per message of `messages`, then joins them."
                        .into(),
                ),
                input_schema: object_schema(
                    json!({"messages": {"type": "array", "items": {"type": "string"}}}),
                    &["messages"],
                ),
                ..AgentDecl::new("conf-parent")
            },
            parent,
        )
        .declare(
            AgentDecl {
                description: Some(
                    "Reads the input file `doc`; stores it in upper case as `upper.txt`.".into(),
                ),
                input_schema: object_schema(json!({ "doc": FILE_SCHEMA.clone() }), &["doc"]),
                ..AgentDecl::new("conf-files")
            },
            files,
        )
        .declare(
            AgentDecl {
                description: Some("Sleeps `ms` milliseconds, cooperatively cancellable.".into()),
                input_schema: object_schema(
                    json!({"ms": {"type": "integer", "minimum": 0}}),
                    &["ms"],
                ),
                timeout_ms: Some(SLEEP_TIMEOUT_MS),
                retry: Some(SCENARIO_RETRY),
                ..AgentDecl::new("conf-sleep")
            },
            sleep,
        )
        .slots(slots);
    if let Ok(name) = std::env::var("WORKER_NAME") {
        worker = worker.name(name);
    }
    if let Err(e) = worker.run_until(shutdown_signal()).await {
        eprintln!("worker stopped: {e}");
        std::process::exit(1);
    }
}
