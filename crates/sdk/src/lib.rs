//! Write Switchyard agents in Rust, and drive a server from Rust: [`Client`] submits,
//! follows, cancels and retries tasks and manages agents over the REST API.
//!
//! A worker connects to a Switchyard server over WebSocket with an API key of scope
//! `worker`, declares the agents it serves and how many tasks it runs at once, and then
//! runs the tasks the server assigns:
//!
//! ```no_run
//! use switchyard_sdk::{TaskContext, TaskError, Worker};
//! use serde_json::{Value, json};
//!
//! async fn summarize(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
//!     let text = input["text"].as_str().ok_or_else(|| TaskError::permanent("`text` is required"))?;
//!     ctx.info(format!("summarizing {} bytes", text.len())).await;
//!     Ok(json!({ "summary": text.chars().take(100).collect::<String>() }))
//! }
//!
//! # async fn run() -> Result<(), switchyard_sdk::SdkError> {
//! Worker::connect("http://127.0.0.1:8080", "sy_…")
//!     .agent("summarize", summarize)
//!     .slots(8)
//!     .run()
//!     .await
//! # }
//! ```
//!
//! The worker reconnects with backoff when the connection drops, renews its leases with
//! heartbeats, enforces each attempt's timeout, passes cancellation to handlers through
//! [`TaskContext::cancelled`], keeps durable steps ([`TaskContext::step`]), waits without
//! holding a slot ([`TaskContext::sleep`], [`TaskContext::wait_for_signal`],
//! [`TaskContext::join`] of children from [`TaskContext::spawn`]) and on shutdown (Ctrl-C,
//! or the future given to [`WorkerBuilder::run_until`]) stops taking work and finishes
//! what it has.

mod client;
mod connection;
mod files;
mod step;
mod wait;

pub use client::{
    Agent, ApiError, Attempt, Client, ClientBuilder, ClientError, Credential, ListTasks, LogLine,
    LogQuery, Me, Session, SubmitOptions, Task, TaskErrorInfo, TaskEvent, TaskEvents, TaskPage,
    TaskStatus, User,
};
pub use wait::{ChildFailure, WAIT_TIMEOUT};

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_protocol::worker::WorkerMessage;
pub use switchyard_protocol::worker::{AgentDecl, ErrorClass, FileRef, Level, RetryDecl};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("invalid server URL {0:?}: use http(s)://host:port")]
    InvalidUrl(String),
    #[error("the server refused the worker: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("connection failed: {0}")]
    Connection(String),
}

/// A classified failure of one attempt (see the server's Error Recovery flow).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskError {
    pub class: ErrorClass,
    pub message: String,
    pub code: Option<String>,
    pub retry_after_ms: Option<u64>,
}

impl TaskError {
    /// Worth retrying (the default for timeouts, network errors, 5xx).
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError {
            class: ErrorClass::Retryable,
            message: message.into(),
            code: None,
            retry_after_ms: None,
        }
    }

    /// Will fail the same way again (bad input): no retries, straight to the fallback.
    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError {
            class: ErrorClass::Permanent,
            message: message.into(),
            code: None,
            retry_after_ms: None,
        }
    }

    /// The downstream asked to slow down; retry after `retry_after`, if known.
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        TaskError {
            class: ErrorClass::RateLimited,
            message: message.into(),
            code: None,
            retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::retryable(e.to_string())
    }
}

/// What a handler can see and do while it runs one attempt.
#[derive(Clone)]
pub struct TaskContext {
    pub task_id: uuid::Uuid,
    pub attempt: u32,
    pub agent: String,
    /// W3C trace context of the task (`00-<trace id>-<span id>-01`), if any.
    pub traceparent: Option<String>,
    pub parent_id: Option<uuid::Uuid>,
    cancel: CancellationToken,
    out: mpsc::Sender<WorkerMessage>,
    steps: step::StepMemory,
    pending: step::PendingSteps,
    /// Fired when a wait ends the run: the runner drops the handler and reports nothing.
    suspend: CancellationToken,
    calls: Arc<wait::CallCounts>,
    files: files::AttemptFiles,
}

impl TaskContext {
    /// Fires when the server asks this attempt to stop (cancellation) or the worker shuts down.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The trace id part of `traceparent`.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent
            .as_deref()
            .and_then(|t| t.split('-').nth(1))
    }

    pub async fn log(&self, level: Level, message: impl Into<String>) {
        let msg = WorkerMessage::Log {
            task_id: self.task_id,
            attempt: self.attempt,
            level,
            message: message.into(),
        };
        let _ = self.out.send(msg).await;
    }

    pub async fn info(&self, message: impl Into<String>) {
        self.log(Level::Info, message).await;
    }

    /// Reports progress: a fraction in [0, 1] and/or a message.
    pub async fn progress(&self, progress: Option<f64>, message: Option<String>) {
        let msg = WorkerMessage::Progress {
            task_id: self.task_id,
            attempt: self.attempt,
            progress,
            message,
        };
        let _ = self.out.send(msg).await;
    }

    /// Streams a piece of output before the result (e.g. LLM tokens).
    pub async fn partial(&self, data: Value) {
        let msg = WorkerMessage::Partial {
            task_id: self.task_id,
            attempt: self.attempt,
            data,
        };
        let _ = self.out.send(msg).await;
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;
type Handler = Arc<dyn Fn(Value, TaskContext) -> BoxFuture + Send + Sync>;

/// Entry point: `Worker::connect(url, api_key)` returns a builder.
pub struct Worker;

impl Worker {
    /// `url` is the server's base URL (`http://host:8080` or `https://…`); `api_key` needs
    /// the `worker` scope. Nothing happens until [`WorkerBuilder::run`].
    pub fn connect(url: impl Into<String>, api_key: impl Into<String>) -> WorkerBuilder {
        WorkerBuilder {
            url: url.into(),
            api_key: api_key.into(),
            name: default_name(),
            slots: 4,
            agents: Vec::new(),
            handlers: HashMap::new(),
            max_backoff: Duration::from_secs(30),
            http: reqwest::Client::new(),
        }
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{}-{}",
        if host.is_empty() { "worker" } else { &host },
        std::process::id()
    )
}

pub struct WorkerBuilder {
    url: String,
    api_key: String,
    name: String,
    slots: u32,
    agents: Vec<AgentDecl>,
    handlers: HashMap<String, Handler>,
    max_backoff: Duration,
    /// For input files and artifacts.
    http: reqwest::Client,
}

impl WorkerBuilder {
    /// Serves agent `name` with `handler`.
    pub fn agent<H, F>(self, name: &str, handler: H) -> Self
    where
        H: Fn(Value, TaskContext) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.declare(AgentDecl::new(name), handler)
    }

    /// Serves an agent declared with a version, description and schemas.
    pub fn declare<H, F>(mut self, decl: AgentDecl, handler: H) -> Self
    where
        H: Fn(Value, TaskContext) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |input, ctx| Box::pin(handler(input, ctx)));
        self.handlers.insert(decl.name.clone(), handler);
        self.agents.retain(|a| a.name != decl.name);
        self.agents.push(decl);
        self
    }

    /// Tasks run at once (default 4).
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// Shown in the server's workers list (default: host name and process id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The longest pause between reconnection attempts (default 30 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Runs until Ctrl-C, then finishes the tasks in flight.
    pub async fn run(self) -> Result<(), SdkError> {
        self.run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    }

    /// Runs until `shutdown` resolves, then finishes the tasks in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SdkError> {
        connection::run(self, shutdown).await
    }
}
