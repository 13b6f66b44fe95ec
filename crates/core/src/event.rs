//! Task events: what clients follow live (SSE, WebSocket) and what `?wait` waits for.
//!
//! Every event carries a per-task sequence number assigned by the store in the same
//! statement that records the change, so numbers are gap-free per task and identical on
//! every server, and a client can resume with "everything after seq N".

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::ids::{TaskId, UserId, WorkerId};
use crate::task::{TaskError, TaskStatus};
use crate::time::Timestamp;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            _ => Err(format!("unknown log level {s:?}")),
        }
    }
}

/// What happened. Serialized with a `kind` tag: `status`, `log`, `progress`, `partial`,
/// `result` (succeeded, with the output) or `error` (failed or dead, with the error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Status {
        status: TaskStatus,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TaskError>,
        /// For `queued` and `retrying`: when the task becomes runnable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_at: Option<Timestamp>,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    Progress {
        /// Fraction done in [0, 1], if the agent knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A piece of output before the result, e.g. LLM tokens.
    Partial {
        #[schema(value_type = Object)]
        data: Value,
    },
    Result {
        status: TaskStatus,
        attempt: u32,
        #[schema(value_type = Object)]
        output: Value,
        cached: bool,
    },
    Error {
        status: TaskStatus,
        attempt: u32,
        error: TaskError,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_task_id: Option<TaskId>,
    },
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Status { .. } => "status",
            EventBody::Log { .. } => "log",
            EventBody::Progress { .. } => "progress",
            EventBody::Partial { .. } => "partial",
            EventBody::Result { .. } => "result",
            EventBody::Error { .. } => "error",
        }
    }

    /// The task status after this event, if the event is a transition.
    pub fn status(&self) -> Option<TaskStatus> {
        match self {
            EventBody::Status { status, .. }
            | EventBody::Result { status, .. }
            | EventBody::Error { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskEvent {
    pub task_id: TaskId,
    pub seq: u64,
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    pub at: Timestamp,
    #[serde(flatten)]
    pub body: EventBody,
}

impl TaskEvent {
    /// The last event a task produces (until someone replays it).
    pub fn is_final(&self) -> bool {
        self.body.status().is_some_and(TaskStatus::is_terminal)
    }
}

/// What travels between processes on the event bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusMessage {
    /// Task events, in order per task.
    Tasks { events: Vec<TaskEvent> },
    /// New runnable work for these agents: dispatchers should claim.
    Wake { agents: Vec<String> },
    /// Work becomes runnable at `at` (delayed tasks, retries after backoff).
    Scheduled { at: Timestamp },
    /// An agent was created, changed or deleted: drop cached copies.
    AgentChanged { name: String },
    /// Ask the worker holding `attempt` of `task_id` to stop.
    Cancel {
        task_id: TaskId,
        attempt: u32,
        worker_id: WorkerId,
    },
    /// A session or API key was revoked: drop cached credentials.
    CredentialRevoked { key: String },
    /// An alert rule started or stopped firing.
    Alert {
        event: Box<crate::monitoring::AlertEvent>,
    },
}

pub type SharedBusMessage = Arc<BusMessage>;
