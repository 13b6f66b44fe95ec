//! Durable waits and child tasks: [`TaskContext::sleep`], [`TaskContext::sleep_until`],
//! [`TaskContext::wait_for_signal`], [`TaskContext::spawn`] and [`TaskContext::join`].
//!
//! A wait that is not over ends the run: the server frees the slot and queues the task
//! again when the wait is over, and the handler's future is dropped at once (it never
//! sees the wait return). The next run meets its steps and waits again, memoized, and
//! goes past them. So a handler must reach its waits in the same order on every run.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_protocol::worker::{ServerMessage, WaitKind, WaitStatus, WorkerMessage};

use crate::step::stored;
use crate::{TaskContext, TaskError};

/// The code of the error [`TaskContext::wait_for_signal`] returns when its timeout passed.
pub const WAIT_TIMEOUT: &str = "wait_timeout";

/// A joined child task that did not succeed, as [`TaskContext::join`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildFailure {
    pub task_id: uuid::Uuid,
    /// `failed`, `dead` or `cancelled`.
    pub status: String,
    /// The child's error (`class`, `code`, `message`, ...), as the server reports it.
    pub error: Value,
}

/// What one wait asks of the server.
struct WaitFor {
    kind: WaitKind,
    duration_ms: Option<u64>,
    until: Option<i64>,
    signal: Option<String>,
    timeout_ms: Option<u64>,
    children: Vec<uuid::Uuid>,
}

impl WaitFor {
    fn new(kind: WaitKind) -> Self {
        WaitFor {
            kind,
            duration_ms: None,
            until: None,
            signal: None,
            timeout_ms: None,
            children: Vec::new(),
        }
    }
}

impl TaskContext {
    /// Waits `duration` without holding a worker slot: the run ends here and the task runs
    /// again once the time has passed (from when the server got the request).
    pub async fn sleep(&self, name: &str, duration: Duration) -> Result<(), TaskError> {
        let wait = WaitFor {
            duration_ms: Some(duration.as_millis().try_into().unwrap_or(u64::MAX)),
            ..WaitFor::new(WaitKind::Sleep)
        };
        self.wait(name, wait).await.map(|_| ())
    }

    /// Waits until `until` without holding a worker slot (see [`TaskContext::sleep`]).
    pub async fn sleep_until(&self, name: &str, until: SystemTime) -> Result<(), TaskError> {
        let millis = match until.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        let wait = WaitFor {
            until: Some(millis),
            ..WaitFor::new(WaitKind::Sleep)
        };
        self.wait(name, wait).await.map(|_| ())
    }

    /// Waits for the signal `name` (`POST /api/v1/tasks/{id}/signals/{name}`) without
    /// holding a worker slot, and returns its payload. A signal sent before the wait is
    /// kept for it. When `timeout` passes first, this returns a permanent error with code
    /// [`WAIT_TIMEOUT`], which the handler may handle.
    pub async fn wait_for_signal<T: DeserializeOwned>(
        &self,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<T, TaskError> {
        let step = format!("signal:{name}");
        let wait = WaitFor {
            signal: Some(name.to_owned()),
            timeout_ms: timeout.map(|t| t.as_millis().try_into().unwrap_or(u64::MAX)),
            ..WaitFor::new(WaitKind::Signal)
        };
        let payload = self.wait(&step, wait).await?;
        stored(&step, payload)
    }

    /// Creates a child task of `agent` with `input` and returns its id. Once per task and
    /// `key` (without a key: per call order among this run's key-less spawns), so a later
    /// run gets the same child instead of a second one.
    pub async fn spawn(
        &self,
        agent: &str,
        input: Value,
        key: Option<&str>,
    ) -> Result<uuid::Uuid, TaskError> {
        let name = match key {
            Some(key) => format!("spawn:{key}"),
            None => format!(
                "spawn:#{}",
                self.calls.spawns.fetch_add(1, Ordering::Relaxed) + 1
            ),
        };
        if let Some(id) = self.steps.get(&name) {
            return stored(&name, id);
        }
        let message = WorkerMessage::Spawn {
            task_id: self.task_id,
            attempt: self.attempt,
            name: name.clone(),
            agent: agent.to_owned(),
            input,
            priority: None,
        };
        match self.ask(&name, message).await? {
            ServerMessage::Spawned {
                accepted: true,
                child_id: Some(id),
                ..
            } => {
                self.steps.insert(&name, Value::String(id.to_string()));
                Ok(id)
            }
            ServerMessage::Spawned { code, message, .. } => Err(self.refused(code, message)),
            other => Err(unexpected(&name, &other)),
        }
    }

    /// Waits, without holding a worker slot, until every task of `ids` (children of this
    /// task) has finished, and returns each one's output in order, or its failure.
    pub async fn join(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<Result<Value, ChildFailure>>, TaskError> {
        let name = format!(
            "join:#{}",
            self.calls.joins.fetch_add(1, Ordering::Relaxed) + 1
        );
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wait = WaitFor {
            children: ids.to_vec(),
            ..WaitFor::new(WaitKind::Children)
        };
        let results: Vec<Value> = stored(&name, self.wait(&name, wait).await?)?;
        Ok(results.into_iter().map(child_result).collect())
    }

    /// A wait: its memoized result, the server's ready result, or the end of the run.
    async fn wait(&self, name: &str, wait: WaitFor) -> Result<Value, TaskError> {
        if let Some(value) = self.steps.get(name) {
            return Ok(value);
        }
        let message = WorkerMessage::Wait {
            task_id: self.task_id,
            attempt: self.attempt,
            name: name.to_owned(),
            kind: wait.kind,
            duration_ms: wait.duration_ms,
            until: wait.until,
            signal: wait.signal,
            timeout_ms: wait.timeout_ms,
            children: wait.children,
        };
        match self.ask(name, message).await? {
            ServerMessage::WaitResult {
                status: WaitStatus::Ready,
                output,
                ..
            } => {
                let output = output.unwrap_or(Value::Null);
                self.steps.insert(name, output.clone());
                Ok(output)
            }
            ServerMessage::WaitResult {
                status: WaitStatus::Suspended,
                ..
            } => {
                // The run is over: the attempt's runner drops the handler on this signal,
                // and the handler never goes past this point.
                self.suspend.cancel();
                std::future::pending().await
            }
            ServerMessage::WaitResult {
                status: WaitStatus::TimedOut,
                ..
            } => Err(TaskError::permanent(format!(
                "the wait {name:?} timed out before its signal came"
            ))
            .with_code(WAIT_TIMEOUT)),
            ServerMessage::WaitResult { code, message, .. } => Err(self.refused(code, message)),
            other => Err(unexpected(name, &other)),
        }
    }
}

fn unexpected(name: &str, answer: &ServerMessage) -> TaskError {
    TaskError::retryable(format!(
        "the server answered {name:?} with an unexpected message: {answer:?}"
    ))
    .with_code("protocol")
}

fn child_result(v: Value) -> Result<Value, ChildFailure> {
    if v["status"] == "succeeded" {
        return Ok(v.get("output").cloned().unwrap_or(Value::Null));
    }
    Err(ChildFailure {
        task_id: v["task_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default(),
        status: v["status"].as_str().unwrap_or("failed").to_owned(),
        error: v.get("error").cloned().unwrap_or(Value::Null),
    })
}

/// Counts a run's key-less spawns and its joins, which name their steps.
#[derive(Default)]
pub(crate) struct CallCounts {
    spawns: std::sync::atomic::AtomicU32,
    joins: std::sync::atomic::AtomicU32,
}
