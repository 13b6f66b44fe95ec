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
use crate::step::{Step, StepStatus};
use crate::store::{AttemptRef, ClaimedTask, TaskLogLine, Transition};
use crate::task::{Task, TaskError, TaskStatus};
use crate::time::Timestamp;
use crate::wait::{ResumeReason, Resumed, Wait};

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
/// `result` (succeeded, with the output), `error` (failed or dead, with the error),
/// `step_finished` (a durable step was recorded), `waiting` (the run ended in a durable
/// wait), `resumed` (the wait is over: queued again) or `signal_received`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
        data: Value,
    },
    Result {
        status: TaskStatus,
        attempt: u32,
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
    /// A durable step of the running attempt was recorded (see [`crate::step`]).
    StepFinished {
        name: String,
        status: StepStatus,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TaskError>,
    },
    /// The run ended in a durable wait (see [`crate::wait`]): the task is `waiting`.
    Waiting {
        attempt: u32,
        wait: Wait,
    },
    /// The wait is over: the task is `queued` again.
    Resumed {
        reason: ResumeReason,
    },
    /// A signal was sent to the task (kept until it waits for it, or waking it).
    SignalReceived {
        name: String,
        payload: Value,
    },
}

impl EventBody {
    /// The event of a recorded step.
    pub fn step_finished(step: Step) -> EventBody {
        EventBody::StepFinished {
            name: step.name,
            status: step.status,
            attempt: step.attempt,
            output: step.output,
            error: step.error,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Status { .. } => "status",
            EventBody::Log { .. } => "log",
            EventBody::Progress { .. } => "progress",
            EventBody::Partial { .. } => "partial",
            EventBody::Result { .. } => "result",
            EventBody::Error { .. } => "error",
            EventBody::StepFinished { .. } => "step_finished",
            EventBody::Waiting { .. } => "waiting",
            EventBody::Resumed { .. } => "resumed",
            EventBody::SignalReceived { .. } => "signal_received",
        }
    }

    /// Progress and partial output: the events a task keeps as its stream (up to
    /// `queue.max_stream_events`), so a late follower receives them all.
    pub fn is_stream(&self) -> bool {
        matches!(self, EventBody::Progress { .. } | EventBody::Partial { .. })
    }

    /// The task status after this event, if the event is a transition.
    pub fn status(&self) -> Option<TaskStatus> {
        match self {
            EventBody::Status { status, .. }
            | EventBody::Result { status, .. }
            | EventBody::Error { status, .. } => Some(*status),
            EventBody::Waiting { .. } => Some(TaskStatus::Waiting),
            EventBody::Resumed { .. } => Some(TaskStatus::Queued),
            _ => None,
        }
    }
}

/// Serialized as one flat object: the task's fields, then the body's `kind` and fields
/// (written by hand: serde's `flatten` collects into an intermediate map, and every
/// task event is serialized for the bus and again for each follower).
#[derive(Clone, Debug, PartialEq, Deserialize)]
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

impl Serialize for TaskEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The entry count up front: formats that write it first (the Redis bus's
        // MessagePack) need not buffer the entries to count them.
        let body_entries = match &self.body {
            EventBody::Status { error, run_at, .. } => {
                2 + usize::from(error.is_some()) + usize::from(run_at.is_some())
            }
            EventBody::Log { .. } => 2,
            EventBody::Progress { progress, message } => {
                usize::from(progress.is_some()) + usize::from(message.is_some())
            }
            EventBody::Partial { .. } => 1,
            EventBody::Result { .. } => 4,
            EventBody::Error {
                fallback_task_id, ..
            } => 3 + usize::from(fallback_task_id.is_some()),
            EventBody::StepFinished { output, error, .. } => {
                3 + usize::from(output.is_some()) + usize::from(error.is_some())
            }
            EventBody::Waiting { .. } | EventBody::SignalReceived { .. } => 2,
            EventBody::Resumed { .. } => 1,
        };
        let len = 5 + usize::from(self.owner_id.is_some()) + body_entries;
        let mut m = s.serialize_map(Some(len))?;
        m.serialize_entry("task_id", &self.task_id)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("agent", &self.agent)?;
        if let Some(owner) = &self.owner_id {
            m.serialize_entry("owner_id", owner)?;
        }
        m.serialize_entry("at", &self.at)?;
        m.serialize_entry("kind", self.body.kind())?;
        match &self.body {
            EventBody::Status {
                status,
                attempt,
                error,
                run_at,
            } => {
                m.serialize_entry("status", status)?;
                m.serialize_entry("attempt", attempt)?;
                if let Some(error) = error {
                    m.serialize_entry("error", error)?;
                }
                if let Some(run_at) = run_at {
                    m.serialize_entry("run_at", run_at)?;
                }
            }
            EventBody::Log { level, message } => {
                m.serialize_entry("level", level)?;
                m.serialize_entry("message", message)?;
            }
            EventBody::Progress { progress, message } => {
                if let Some(progress) = progress {
                    m.serialize_entry("progress", progress)?;
                }
                if let Some(message) = message {
                    m.serialize_entry("message", message)?;
                }
            }
            EventBody::Partial { data } => m.serialize_entry("data", data)?,
            EventBody::Result {
                status,
                attempt,
                output,
                cached,
            } => {
                m.serialize_entry("status", status)?;
                m.serialize_entry("attempt", attempt)?;
                m.serialize_entry("output", output)?;
                m.serialize_entry("cached", cached)?;
            }
            EventBody::Error {
                status,
                attempt,
                error,
                fallback_task_id,
            } => {
                m.serialize_entry("status", status)?;
                m.serialize_entry("attempt", attempt)?;
                m.serialize_entry("error", error)?;
                if let Some(id) = fallback_task_id {
                    m.serialize_entry("fallback_task_id", id)?;
                }
            }
            EventBody::StepFinished {
                name,
                status,
                attempt,
                output,
                error,
            } => {
                m.serialize_entry("name", name)?;
                m.serialize_entry("status", status)?;
                m.serialize_entry("attempt", attempt)?;
                if let Some(output) = output {
                    m.serialize_entry("output", output)?;
                }
                if let Some(error) = error {
                    m.serialize_entry("error", error)?;
                }
            }
            EventBody::Waiting { attempt, wait } => {
                m.serialize_entry("attempt", attempt)?;
                m.serialize_entry("wait", wait)?;
            }
            EventBody::Resumed { reason } => m.serialize_entry("reason", reason)?,
            EventBody::SignalReceived { name, payload } => {
                m.serialize_entry("name", name)?;
                m.serialize_entry("payload", payload)?;
            }
        }
        m.end()
    }
}

/// Every task event is built by one of these constructors, whatever records or relays it.
impl TaskEvent {
    /// The last event a task produces (until someone replays it).
    pub fn is_final(&self) -> bool {
        self.body.status().is_some_and(TaskStatus::is_terminal)
    }

    /// A task's current state, as an event (for a client that starts following it).
    pub fn snapshot(task: &Task) -> TaskEvent {
        let attempt = task.attempts.last().map_or(0, |a| a.number);
        let body = match task.status {
            TaskStatus::Succeeded => EventBody::Result {
                status: task.status,
                attempt,
                output: task.output.clone().unwrap_or(Value::Null),
                cached: task.cached,
            },
            TaskStatus::Failed | TaskStatus::Dead if task.error.is_some() => EventBody::Error {
                status: task.status,
                attempt,
                error: task
                    .error
                    .clone()
                    .unwrap_or_else(|| TaskError::permanent("unknown", "")),
                fallback_task_id: task.fallback_task_id,
            },
            TaskStatus::Waiting if let Some(wait) = task.wait.clone() => {
                EventBody::Waiting { attempt, wait }
            }
            status => EventBody::Status {
                status,
                attempt,
                error: task.error.clone(),
                run_at: status.is_queued().then_some(task.run_at),
            },
        };
        TaskEvent {
            task_id: task.id,
            seq: task.seq,
            agent: task.agent.clone(),
            owner_id: task.owner_id,
            at: task.updated_at,
            body,
        }
    }

    /// A recorded state change.
    pub fn transition(t: Transition) -> TaskEvent {
        TaskEvent {
            task_id: t.task_id,
            seq: t.seq,
            body: t.event_body(),
            agent: t.agent,
            owner_id: t.owner_id,
            at: t.at,
        }
    }

    /// The `running` event of a claim, numbered by the claim itself.
    pub fn claimed(c: &ClaimedTask, at: Timestamp) -> TaskEvent {
        TaskEvent {
            task_id: c.id,
            seq: c.seq,
            agent: c.agent.clone(),
            owner_id: c.owner_id,
            at,
            body: EventBody::Status {
                status: TaskStatus::Running,
                attempt: c.attempt,
                error: None,
                run_at: None,
            },
        }
    }

    /// The `waiting` event of an attempt that ended in a durable wait.
    pub fn waiting(a: &AttemptRef, wait: Wait, seq: u64, at: Timestamp) -> TaskEvent {
        TaskEvent {
            task_id: a.task_id,
            seq,
            agent: a.agent.clone(),
            owner_id: a.owner_id,
            at,
            body: EventBody::Waiting {
                attempt: a.attempt,
                wait,
            },
        }
    }

    /// The events of a waiting task queued again: its wait's `step_finished`, then
    /// `resumed`.
    pub fn resumed(r: &Resumed, at: Timestamp) -> [TaskEvent; 2] {
        let event = |seq, body| TaskEvent {
            task_id: r.task_id,
            seq,
            agent: r.agent.clone(),
            owner_id: r.owner_id,
            at,
            body,
        };
        [
            event(r.seq - 1, EventBody::step_finished(r.step.clone())),
            event(r.seq, EventBody::Resumed { reason: r.reason }),
        ]
    }

    /// A signal sent to `task`, numbered `seq`.
    pub fn signal_received(
        task: &Task,
        seq: u64,
        name: &str,
        payload: Value,
        at: Timestamp,
    ) -> TaskEvent {
        TaskEvent {
            task_id: task.id,
            seq,
            agent: task.agent.clone(),
            owner_id: task.owner_id,
            at,
            body: EventBody::SignalReceived {
                name: name.to_owned(),
                payload,
            },
        }
    }

    /// A stored log line of `task`, as the live event it was.
    pub fn log_line(task: &Task, line: TaskLogLine) -> TaskEvent {
        TaskEvent {
            task_id: line.task_id,
            seq: line.seq,
            agent: task.agent.clone(),
            owner_id: task.owner_id,
            at: line.at,
            body: EventBody::Log {
                level: line.level,
                message: line.message,
            },
        }
    }
}

impl TaskEvent {
    /// A stream event (progress, partial output) the task kept.
    pub fn kept(task: &Task, event: crate::store::StreamEvent) -> TaskEvent {
        TaskEvent {
            task_id: task.id,
            seq: event.seq,
            agent: task.agent.clone(),
            owner_id: task.owner_id,
            at: event.at,
            body: event.body,
        }
    }

    /// Tells a follower that the oldest stream events of the task are gone, in the place
    /// of the newest of them.
    pub fn stream_cut(task: &Task, cut: crate::store::StreamCut, keep: u32) -> TaskEvent {
        TaskEvent {
            task_id: task.id,
            seq: cut.last_seq,
            agent: task.agent.clone(),
            owner_id: task.owner_id,
            at: task.updated_at,
            body: EventBody::Log {
                level: LogLevel::Warn,
                message: format!(
                    "the first {} progress and partial-output events of this task are no longer \
                     kept: a task keeps its last {keep} (queue.max_stream_events)",
                    cut.dropped
                ),
            },
        }
    }
}

impl TaskEvent {
    /// One event of every kind, with each optional field both set and unset (owner,
    /// error, run_at, progress, message, fallback) and outputs that are hard to encode
    /// (escapes, non-ASCII, the extreme integers): what a test of an encoding of task
    /// events (the JSON API's, the event bus's) sends through it.
    pub fn samples() -> Vec<TaskEvent> {
        use serde_json::json;
        let at = Timestamp::from_millis(1_764_000_000_123);
        let error = TaskError {
            retry_after_ms: Some(1_500),
            details: Some(Box::new(
                json!({"status": 503, "body": "é\"\n", "n": [1.5, null]}),
            )),
            ..TaskError::new(
                crate::task::ErrorClass::RateLimited,
                "http_429",
                "slow down",
            )
        };
        let bodies = vec![
            EventBody::Status {
                status: TaskStatus::Queued,
                attempt: 0,
                error: None,
                run_at: Some(at),
            },
            EventBody::Status {
                status: TaskStatus::Retrying,
                attempt: 2,
                error: Some(error.clone()),
                run_at: None,
            },
            EventBody::Log {
                level: LogLevel::Warn,
                message: "a \"quoted\" line\n".into(),
            },
            EventBody::Progress {
                progress: Some(0.25),
                message: None,
            },
            EventBody::Progress {
                progress: None,
                message: Some("half".into()),
            },
            EventBody::Partial {
                data: json!({"token": "hé", "list": [1, -2, 3.5, true, null, {}]}),
            },
            EventBody::Result {
                status: TaskStatus::Succeeded,
                attempt: 1,
                output: json!(null),
                cached: true,
            },
            EventBody::Result {
                status: TaskStatus::Succeeded,
                attempt: 3,
                output: json!({"big": u64::MAX, "neg": i64::MIN}),
                cached: false,
            },
            EventBody::Error {
                status: TaskStatus::Failed,
                attempt: 3,
                error: error.clone(),
                fallback_task_id: Some(TaskId::new()),
            },
            EventBody::Error {
                status: TaskStatus::Dead,
                attempt: 1,
                error: error.clone(),
                fallback_task_id: None,
            },
            EventBody::StepFinished {
                name: "search".into(),
                status: StepStatus::Succeeded,
                attempt: 2,
                output: Some(json!({"hits": [1, 2], "q": "hé"})),
                error: None,
            },
            EventBody::StepFinished {
                name: "review".into(),
                status: StepStatus::Failed,
                attempt: 1,
                output: None,
                error: Some(error),
            },
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| TaskEvent {
                task_id: TaskId::new(),
                seq: i as u64 + 1,
                agent: "echo".into(),
                owner_id: (i % 2 == 0).then(|| UserId(uuid::Uuid::now_v7())),
                at: at.plus_ms(i as u64),
                body,
            })
            .collect()
    }
}

/// An event shared by everything that handles it (bus, hub, subscribers): one allocation
/// per event, however many places hold it.
pub type SharedEvent = Arc<TaskEvent>;

/// What travels between processes on the event bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusMessage {
    /// Task events, in order per task.
    Tasks { events: Vec<SharedEvent> },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `#[serde(flatten)]` writes: the hand-written serializer must match it.
    #[derive(Serialize)]
    struct Flattened<'a> {
        task_id: TaskId,
        seq: u64,
        agent: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner_id: Option<UserId>,
        at: Timestamp,
        #[serde(flatten)]
        body: &'a EventBody,
    }

    #[test]
    fn events_serialize_flat_and_round_trip() {
        for event in TaskEvent::samples() {
            let text = serde_json::to_string(&event).unwrap();
            let flattened = Flattened {
                task_id: event.task_id,
                seq: event.seq,
                agent: &event.agent,
                owner_id: event.owner_id,
                at: event.at,
                body: &event.body,
            };
            assert_eq!(text, serde_json::to_string(&flattened).unwrap());
            assert_eq!(serde_json::from_str::<TaskEvent>(&text).unwrap(), event);
        }
    }
}
