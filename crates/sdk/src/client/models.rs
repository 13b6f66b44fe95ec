//! What the REST API answers, as the [`Client`](crate::Client) returns it. Field names are
//! the wire's; fields this version does not know are kept in `extra`, so a value written
//! back out (`serde_json::to_value`) holds everything the server sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Retrying,
    Waiting,
    Succeeded,
    /// Failed for good and handed to the agent's fallback (`fallback_task_id`).
    Failed,
    Cancelled,
    /// Failed for good with no fallback: the dead-letter queue.
    Dead,
    /// A status newer than this client.
    #[serde(other)]
    Unknown,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Waiting => "waiting",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Dead => "dead",
            TaskStatus::Unknown => "unknown",
        }
    }

    /// Whether the task is over: nothing about it changes any more (unless retried).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Dead
        )
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt or a task failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskErrorInfo {
    /// `retryable`, `permanent` or `rate_limited`.
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One run of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub status: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A task as `GET /api/v1/tasks/{id}` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub agent: String,
    pub status: TaskStatus,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<TaskErrorInfo>,
    /// Every attempt so far, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Set on a `failed` task: the fallback task that took over.
    #[serde(default)]
    pub fallback_task_id: Option<String>,
    /// The sequence number of its latest event.
    #[serde(default)]
    pub seq: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A page of [`Client::list`](crate::Client::list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskPage {
    pub items: Vec<Task>,
    /// Pass as [`ListTasks::cursor`] for the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One log line a task's agent wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub attempt: u32,
    /// RFC 3339.
    pub at: String,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// A registered agent (`GET /api/v1/agents/{name}`). Secret config values read `"***"`
/// and `secrets` lists where they are set; sending `"***"` back keeps the stored value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub version: String,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub retry: Value,
    pub timeout_ms: u64,
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub cache_ttl_ms: Option<u64>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_per_key: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Value>,
    /// Built-in agents exist on every install and cannot be deleted.
    #[serde(default)]
    pub builtin: bool,
    /// JSON pointers of the secrets that are set, e.g. `/config/headers/Authorization`.
    #[serde(default)]
    pub secrets: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One event of a task, as followed live: `kind` is `status`, `log`, `progress`,
/// `partial`, `result`, `error`, `step_finished`, `waiting`, `resumed` or
/// `signal_received`; its other fields (`status`, `message`, `data`, `output`, `error`,
/// …) are in `fields`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    pub task_id: String,
    pub seq: u64,
    pub agent: String,
    /// RFC 3339.
    pub at: String,
    pub kind: String,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl TaskEvent {
    /// The task's status after this event, for the events that change it.
    pub fn status(&self) -> Option<TaskStatus> {
        let status = self.fields.get("status")?;
        serde_json::from_value(status.clone()).ok()
    }

    /// Whether no event follows this one: the task is over.
    pub fn is_final(&self) -> bool {
        matches!(self.kind.as_str(), "status" | "result" | "error")
            && self.status().is_some_and(TaskStatus::is_finished)
    }

    /// A `partial` event's data.
    pub fn partial(&self) -> Option<&Value> {
        (self.kind == "partial").then(|| self.fields.get("data"))?
    }
}

/// Who a credential belongs to (`GET /api/v1/auth/me`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// For API keys: what the key may do (`submit`, `read`, `worker`, `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A login session's tokens: a short-lived access token and the refresh token that gets
/// the next one. The refresh token rotates: every refresh spends it and answers a new
/// one, and presenting a spent one ends the session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires, in seconds since the Unix epoch.
    pub expires_at: u64,
}

// Tokens are credentials: never printed.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What `POST /api/v1/auth/login` and `/refresh` answer.
#[derive(Deserialize)]
pub(crate) struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl TokenPair {
    pub fn into_session(self) -> Session {
        Session {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: super::unix_now().saturating_add(self.expires_in),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_task_keeps_the_fields_it_does_not_know() {
        let wire = json!({
            "id": "t1", "agent": "echo", "status": "succeeded", "input": {"a": 1},
            "output": {"a": 1}, "error": null, "attempts": [{"number": 1, "status": "succeeded", "worker": "w"}],
            "created_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:00:01Z",
            "seq": 4, "priority": 3, "brand_new": true
        });
        let task: Task = serde_json::from_value(wire.clone()).unwrap();
        assert!(task.status.is_finished());
        assert_eq!(task.extra["brand_new"], true);
        let back = serde_json::to_value(&task).unwrap();
        for (key, value) in wire.as_object().unwrap() {
            assert_eq!(&back[key], value, "{key}");
        }
    }

    #[test]
    fn an_unknown_status_is_not_an_error() {
        let s: TaskStatus = serde_json::from_value(json!("hibernating")).unwrap();
        assert_eq!(s, TaskStatus::Unknown);
        assert!(!s.is_finished());
    }

    #[test]
    fn final_events_end_the_stream() {
        let event = |kind: &str, status: Option<&str>| {
            let mut e = json!({"task_id": "t", "seq": 1, "agent": "a", "at": "x", "kind": kind});
            if let Some(s) = status {
                e["status"] = json!(s);
            }
            serde_json::from_value::<TaskEvent>(e).unwrap()
        };
        assert!(event("result", Some("succeeded")).is_final());
        assert!(event("error", Some("dead")).is_final());
        assert!(event("status", Some("cancelled")).is_final());
        assert!(!event("error", Some("retrying")).is_final());
        assert!(!event("status", Some("running")).is_final());
        assert!(!event("partial", None).is_final());
    }
}
