//! Durable steps: named pieces of a task's handler whose outcomes the server keeps, so
//! that a later run of the same task (a retry, after a lost worker) gets a step's result
//! without doing its work again.
//!
//! A step that succeeded is never replaced; a failed one is replaced by the outcome of its
//! next run. Steps belong to the task, not to an attempt: each records the attempt that
//! ran it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::ids::TaskId;
use crate::task::TaskError;
use crate::time::Timestamp;

/// Longest step name, in characters.
pub const MAX_STEP_NAME_CHARS: usize = 200;

/// Codes of a refused step record (`step_recorded` with `accepted: false`).
pub mod refusals {
    /// The attempt no longer holds its lease: it was cancelled, timed out or reassigned.
    pub const LEASE_LOST: &str = "lease_lost";
    pub const OUTPUT_TOO_LARGE: &str = "step_output_too_large";
    pub const TOO_MANY_STEPS: &str = "too_many_steps";
    pub const INVALID_STEP: &str = "invalid_step";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for StepStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(StepStatus::Succeeded),
            "failed" => Ok(StepStatus::Failed),
            _ => Err(format!("unknown step status {s:?}")),
        }
    }
}

/// How a step's run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    Succeeded(Value),
    Failed(TaskError),
}

/// A step of a task, as stored and listed (`GET /api/v1/tasks/{id}/steps`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    pub name: String,
    pub status: StepStatus,
    /// The attempt that ran it (last, for a step that failed before).
    pub attempt: u32,
    /// What it returned, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why its last run failed, while it has not succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

/// A step's outcome as a worker reports it, for the store.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDraft {
    pub task_id: TaskId,
    pub attempt: u32,
    pub name: String,
    pub outcome: StepOutcome,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

impl StepDraft {
    /// The step as it is stored.
    pub fn to_step(&self) -> Step {
        let (status, output, error) = match &self.outcome {
            StepOutcome::Succeeded(v) => (StepStatus::Succeeded, Some(v.clone()), None),
            StepOutcome::Failed(e) => (StepStatus::Failed, None, Some(e.clone())),
        };
        Step {
            name: self.name.clone(),
            status,
            attempt: self.attempt,
            output,
            error,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

/// What the store made of a [`StepDraft`].
#[derive(Clone, Debug, PartialEq)]
pub enum StepRecord {
    /// Stored (new, or replacing a failed run).
    Recorded,
    /// The step had succeeded before: its first result stays.
    Kept,
    /// The task is not running that attempt (any more).
    LeaseLost,
    /// The task holds the most steps allowed; this one is new.
    TooMany,
}

/// A step name is 1–200 characters without U+0000.
pub fn check_step_name(name: &str) -> Result<(), Error> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_STEP_NAME_CHARS || name.contains('\0') {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            format!(
                "a step name must be 1-{MAX_STEP_NAME_CHARS} characters without U+0000, got {chars} characters"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_bounded_and_free_of_nul() {
        assert!(check_step_name("draft").is_ok());
        assert!(check_step_name(&"é".repeat(MAX_STEP_NAME_CHARS)).is_ok());
        assert!(check_step_name("").is_err());
        assert!(check_step_name(&"x".repeat(MAX_STEP_NAME_CHARS + 1)).is_err());
        assert!(check_step_name("a\0b").is_err());
    }

    #[test]
    fn a_draft_stores_its_outcome() {
        let draft = StepDraft {
            task_id: TaskId::new(),
            attempt: 2,
            name: "search".into(),
            outcome: StepOutcome::Failed(TaskError::retryable("busy", "upstream busy")),
            started_at: Timestamp::from_millis(1_000),
            finished_at: Timestamp::from_millis(1_500),
        };
        let step = draft.to_step();
        assert_eq!(step.status, StepStatus::Failed);
        assert_eq!(step.output, None);
        assert_eq!(step.error.unwrap().code, "busy");
    }
}
