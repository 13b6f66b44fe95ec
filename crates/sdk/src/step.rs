//! Durable steps ([`TaskContext::step`]): what a run of a task remembers from the runs
//! before it, and the round trip that stores a step's outcome before the handler goes on.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_protocol::worker::{ServerMessage, StepError, WorkerMessage};
use tokio::sync::oneshot;

use crate::{TaskContext, TaskError};

/// Which step of which attempt: the key the server's answers (`step_recorded`,
/// `wait_result`, `spawned`) are matched by.
type StepKey = (uuid::Uuid, u32, String);

/// Steps (and waits, spawns) awaiting the server's answer on one connection. Dropped with
/// the connection, which ends every wait.
#[derive(Clone, Default)]
pub(crate) struct PendingSteps(Arc<Mutex<HashMap<StepKey, oneshot::Sender<ServerMessage>>>>);

impl PendingSteps {
    pub(crate) fn wait(
        &self,
        task_id: uuid::Uuid,
        attempt: u32,
        name: &str,
    ) -> oneshot::Receiver<ServerMessage> {
        let (tx, rx) = oneshot::channel();
        self.0
            .lock()
            .insert((task_id, attempt, name.to_owned()), tx);
        rx
    }

    /// Hands the server's answer (`step_recorded`, `wait_result`, `spawned`) to whoever
    /// waits for it.
    pub(crate) fn answer(&self, answer: ServerMessage) {
        let key = match &answer {
            ServerMessage::StepRecorded {
                task_id,
                attempt,
                name,
                ..
            }
            | ServerMessage::WaitResult {
                task_id,
                attempt,
                name,
                ..
            }
            | ServerMessage::Spawned {
                task_id,
                attempt,
                name,
                ..
            } => (*task_id, *attempt, name.clone()),
            _ => return,
        };
        if let Some(tx) = self.0.lock().remove(&key) {
            let _ = tx.send(answer);
        }
    }

    /// The connection is gone: every wait ends.
    pub(crate) fn clear(&self) {
        self.0.lock().clear();
    }
}

/// A run's memory of its steps: the results of earlier runs (from the assignment) and of
/// the steps this run recorded.
#[derive(Clone, Default)]
pub(crate) struct StepMemory(Arc<Mutex<HashMap<String, Value>>>);

impl StepMemory {
    pub(crate) fn new(steps: serde_json::Map<String, Value>) -> Self {
        StepMemory(Arc::new(Mutex::new(steps.into_iter().collect())))
    }

    pub(crate) fn get(&self, name: &str) -> Option<Value> {
        self.0.lock().get(name).cloned()
    }

    pub(crate) fn insert(&self, name: &str, value: Value) {
        self.0.lock().insert(name.to_owned(), value);
    }
}

/// A stored step result as the type the handler asks for.
pub(crate) fn stored<T: DeserializeOwned>(name: &str, stored: Value) -> Result<T, TaskError> {
    serde_json::from_value(stored).map_err(|e| {
        TaskError::permanent(format!(
            "step {name:?}: its stored result does not fit the type asked for: {e}"
        ))
        .with_code("step_type_mismatch")
    })
}

impl TaskContext {
    /// Runs `work` once per task: its result is stored on the server before this returns,
    /// and every later run of the same task (a retry, after a lost worker) gets the stored
    /// result without running `work` again. Name each step uniquely within the handler.
    ///
    /// An error from `work` is recorded on the step and returned unchanged (the step runs
    /// again in the next run). A step the server refuses returns a permanent error with
    /// the refusal's code (`step_output_too_large`, `too_many_steps`, `invalid_step`); if
    /// the attempt lost its lease meanwhile, the attempt is cancelled.
    pub async fn step<T, F, Fut>(&self, name: &str, work: F) -> Result<T, TaskError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, TaskError>>,
    {
        if let Some(value) = self.steps.get(name) {
            return stored(name, value);
        }
        let started = Instant::now();
        let outcome = work().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (output, error) = match &outcome {
            Ok(value) => {
                let value = serde_json::to_value(value).map_err(|e| {
                    TaskError::permanent(format!(
                        "step {name:?} returned a value that is not JSON: {e}"
                    ))
                    .with_code("invalid_step_output")
                })?;
                (Some(value), None)
            }
            Err(e) => (
                None,
                Some(StepError {
                    message: e.message.clone(),
                    class: Some(e.class),
                    code: e.code.clone(),
                }),
            ),
        };
        let message = WorkerMessage::Step {
            task_id: self.task_id,
            attempt: self.attempt,
            name: name.to_owned(),
            output: output.clone(),
            error,
            duration_ms,
        };
        match self.ask(name, message).await? {
            ServerMessage::StepRecorded {
                accepted: false,
                code,
                message,
                ..
            } => Err(self.refused(code, message)),
            _ => {
                if let Some(value) = output {
                    self.steps.insert(name, value);
                }
                outcome
            }
        }
    }

    /// Sends a step's (a wait's, a spawn's) message and waits for the server's answer.
    pub(crate) async fn ask(
        &self,
        name: &str,
        message: WorkerMessage,
    ) -> Result<ServerMessage, TaskError> {
        let answer = self.pending.wait(self.task_id, self.attempt, name);
        if self.out.send(message).await.is_err() {
            return Err(self.lost(name));
        }
        answer.await.map_err(|_| self.lost(name))
    }

    /// A refusal by the server: a permanent error with its code, or, when the attempt lost
    /// its lease, the attempt's cancellation.
    pub(crate) fn refused(&self, code: Option<String>, message: Option<String>) -> TaskError {
        let code = code.unwrap_or_else(|| "step_refused".into());
        let message = message.unwrap_or_default();
        if code == "lease_lost" {
            self.cancel.cancel();
            return TaskError::retryable(message).with_code(code);
        }
        TaskError::permanent(message).with_code(code)
    }

    /// The connection went while a step waited: the attempt is over (the server retries
    /// the task), so the handler is cancelled.
    fn lost(&self, name: &str) -> TaskError {
        self.cancel.cancel();
        TaskError::retryable(format!(
            "the connection was lost while step {name:?} was being stored"
        ))
        .with_code("worker_lost")
    }
}
