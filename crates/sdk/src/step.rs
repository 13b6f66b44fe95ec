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
use switchyard_protocol::worker::{StepError, WorkerMessage};
use tokio::sync::oneshot;

use crate::{TaskContext, TaskError};

/// The server's answer to one `step` message: `None` accepted, or the refusal's code
/// and message.
pub(crate) type StepAnswer = Option<(String, String)>;

/// Which step of which attempt: the key `step_recorded` answers are matched by.
type StepKey = (uuid::Uuid, u32, String);

/// Steps awaiting `step_recorded` on one connection. Dropped with the connection, which
/// ends every wait.
#[derive(Clone, Default)]
pub(crate) struct PendingSteps(Arc<Mutex<HashMap<StepKey, oneshot::Sender<StepAnswer>>>>);

impl PendingSteps {
    fn wait(&self, task_id: uuid::Uuid, attempt: u32, name: &str) -> oneshot::Receiver<StepAnswer> {
        let (tx, rx) = oneshot::channel();
        self.0
            .lock()
            .insert((task_id, attempt, name.to_owned()), tx);
        rx
    }

    /// Hands the server's answer to whoever waits for it.
    pub(crate) fn answer(
        &self,
        task_id: uuid::Uuid,
        attempt: u32,
        name: String,
        answer: StepAnswer,
    ) {
        if let Some(tx) = self.0.lock().remove(&(task_id, attempt, name)) {
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
        let known = self.steps.0.lock().get(name).cloned();
        if let Some(stored) = known {
            return serde_json::from_value(stored).map_err(|e| {
                TaskError::permanent(format!(
                    "step {name:?}: its stored result does not fit the type asked for: {e}"
                ))
                .with_code("step_type_mismatch")
            });
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
        let answer = self.pending.wait(self.task_id, self.attempt, name);
        let message = WorkerMessage::Step {
            task_id: self.task_id,
            attempt: self.attempt,
            name: name.to_owned(),
            output: output.clone(),
            error,
            duration_ms,
        };
        if self.out.send(message).await.is_err() {
            return Err(self.lost(name));
        }
        match answer.await {
            Ok(None) => {
                if let Some(value) = output {
                    self.steps.0.lock().insert(name.to_owned(), value);
                }
                outcome
            }
            Ok(Some((code, message))) if code == "lease_lost" => {
                self.cancel.cancel();
                Err(TaskError::retryable(message).with_code(code))
            }
            Ok(Some((code, message))) => Err(TaskError::permanent(message).with_code(code)),
            Err(_) => Err(self.lost(name)),
        }
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
