//! Tasks and their lifecycle: the state machine, error classes and the failure decision.
//!
//! ```text
//!              claim               success
//!   queued ──────────▶ running ───────────────▶ succeeded
//!     ▲  ▲               │ │ │
//!     │  │  backoff done │ │ └─ cancel ───────▶ cancelled
//!     │  └── retrying ◀──┘ │
//!     │                    ├─ out of attempts / permanent, fallback ─▶ failed (+ new fallback task)
//!     │                    ├─ out of attempts / permanent, none ─────▶ dead
//!     │                    └─ durable wait ──▶ waiting ──┐
//!     ├──────────── wait over (time, signal, children) ◀─┘
//!     └──────────── replay (dead, failed, cancelled)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::ids::{TaskId, UserId, WorkerId};
use crate::retry::RetryPolicy;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting to be claimed (possibly until `run_at`).
    Queued,
    /// Claimed by a worker that holds a lease on it.
    Running,
    /// Failed an attempt; waiting for its backoff to elapse.
    Retrying,
    Succeeded,
    /// Failed for good and handed to the agent's fallback (see `fallback_task_id`).
    Failed,
    Cancelled,
    /// Failed for good with no fallback: the dead-letter queue.
    Dead,
    /// Its last run ended in a durable wait (time, a signal, child tasks): it holds no
    /// worker and is queued again when the wait is over (see [`crate::wait`]).
    Waiting,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Retrying,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::Dead,
        TaskStatus::Waiting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Dead => "dead",
            TaskStatus::Waiting => "waiting",
        }
    }

    /// No further transition happens without an explicit replay.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Dead
        )
    }

    /// Waiting in the queue to be claimed.
    pub fn is_queued(self) -> bool {
        matches!(self, TaskStatus::Queued | TaskStatus::Retrying)
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_transition_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Queued | Retrying, Running | Cancelled)
                | (
                    Running,
                    Succeeded | Retrying | Failed | Dead | Cancelled | Waiting
                )
                | (Waiting, Queued | Cancelled)
                | (Dead | Failed | Cancelled, Queued)
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}; expected one of: {}",
                    TaskStatus::ALL.map(|s| s.as_str()).join(", ")
                )
            })
    }
}

/// How an agent classifies a failure; drives the Error Recovery flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Worth trying again (timeouts, lost workers, 5xx, network errors). The default.
    Retryable,
    /// Will fail the same way again (bad input, 4xx): go straight to fallback / dead.
    Permanent,
    /// The downstream asked us to slow down; retry after `retry_after_ms` if given.
    RateLimited,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Permanent => "permanent",
            ErrorClass::RateLimited => "rate_limited",
        }
    }
}

impl FromStr for ErrorClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "retryable" => Ok(ErrorClass::Retryable),
            "permanent" => Ok(ErrorClass::Permanent),
            "rate_limited" => Ok(ErrorClass::RateLimited),
            _ => Err(format!(
                "unknown error class {s:?}; expected retryable, permanent or rate_limited"
            )),
        }
    }
}

/// Well-known failure codes produced by Switchyard itself.
pub mod codes {
    pub const TIMEOUT: &str = "timeout";
    pub const WORKER_LOST: &str = "worker_lost";
    pub const LEASE_EXPIRED: &str = "lease_expired";
    pub const CANCELLED: &str = "cancelled";
    pub const INVALID_OUTPUT: &str = "invalid_output";
    pub const FALLBACK_REJECTED: &str = "fallback_rejected";
    pub const AGENT_MISSING: &str = "agent_missing";
    /// The database would not hold the attempt's result (its output, say).
    pub const RESULT_NOT_RECORDED: &str = "result_not_recorded";
}

/// A classified failure of one attempt, or of the whole task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskError {
    pub class: ErrorClass,
    /// A short machine-readable code, e.g. `timeout`, `http_503`, `worker_lost`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Box<Value>>,
}

impl TaskError {
    pub fn new(class: ErrorClass, code: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError {
            class,
            code: code.into(),
            message: message.into(),
            retry_after_ms: None,
            details: None,
        }
    }

    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Retryable, code, message)
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, code, message)
    }

    pub fn rate_limited(message: impl Into<String>, retry_after_ms: Option<u64>) -> Self {
        TaskError {
            retry_after_ms,
            ..Self::new(ErrorClass::RateLimited, "rate_limited", message)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The run ended in a durable wait; the task runs again when it is over.
    Suspended,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Running => "running",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Cancelled => "cancelled",
            AttemptStatus::Suspended => "suspended",
        }
    }
}

impl FromStr for AttemptStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(AttemptStatus::Running),
            "succeeded" => Ok(AttemptStatus::Succeeded),
            "failed" => Ok(AttemptStatus::Failed),
            "cancelled" => Ok(AttemptStatus::Cancelled),
            "suspended" => Ok(AttemptStatus::Suspended),
            _ => Err(format!("unknown attempt status {s:?}")),
        }
    }
}

/// One execution of a task by one worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// 1-based, counting every attempt the task ever had (replays continue the count).
    pub number: u32,
    pub status: AttemptStatus,
    pub worker_id: Option<WorkerId>,
    pub worker: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
}

/// A task as clients see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: TaskId,
    pub agent: String,
    pub status: TaskStatus,
    /// Higher runs first.
    pub priority: i32,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<TaskError>,
    /// True when the output came from the result cache without running the agent.
    pub cached: bool,
    pub owner_id: Option<UserId>,
    pub idempotency_key: Option<String>,
    pub run_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
    /// The task that submitted this one (fan-out / fan-in).
    pub parent_id: Option<TaskId>,
    /// Set on a fallback task: the task whose failure created it.
    pub fallback_of: Option<TaskId>,
    /// Set on a `failed` task: the fallback task that took over.
    pub fallback_task_id: Option<TaskId>,
    pub trace_id: Option<String>,
    pub cancel_requested: bool,
    /// The sequence number of the latest event of this task.
    pub seq: u64,
    /// While `waiting`: what for, and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<crate::wait::Wait>,
    /// The flow key it shares concurrency and rate limits under (see `flow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// The schedule that fired it, and the tick it fired for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Timestamp>,
}

impl Task {
    /// The worker holding the lease of the running attempt, if any.
    pub fn lease_holder(&self) -> Option<WorkerId> {
        self.attempts
            .iter()
            .rev()
            .find(|a| a.status == AttemptStatus::Running)
            .and_then(|a| a.worker_id)
    }
}

/// What to do with a task whose attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureDecision {
    /// Try again after this many milliseconds.
    Retry { delay_ms: u64 },
    /// Give up on this agent; run the named fallback agent with the same input.
    Fallback { agent: String },
    /// Give up for good: the task becomes dead.
    Dead,
}

/// The Error Recovery flow: classify → can retry? → backoff, else fallback, else dead.
///
/// `attempts_in_run` counts the attempts made since the task was submitted or last
/// replayed, the failed one included. `unit` is the random draw in [0, 1) for jitter.
pub fn decide_failure(
    error: &TaskError,
    attempts_in_run: u32,
    policy: &RetryPolicy,
    fallback: Option<&str>,
    unit: f64,
) -> FailureDecision {
    let can_retry = error.class != ErrorClass::Permanent && attempts_in_run < policy.max_attempts;
    if can_retry {
        let backoff = policy.delay_ms(attempts_in_run.max(1), unit);
        let delay_ms = match (error.class, error.retry_after_ms) {
            (ErrorClass::RateLimited, Some(after)) => after.min(crate::retry::MAX_BACKOFF_MS),
            _ => backoff,
        };
        return FailureDecision::Retry { delay_ms };
    }
    match fallback {
        Some(agent) => FailureDecision::Fallback {
            agent: agent.to_owned(),
        },
        None => FailureDecision::Dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(max: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max,
            base_ms: 100,
            cap_ms: 10_000,
        }
    }

    #[test]
    fn retryable_errors_back_off_until_attempts_run_out() {
        let e = TaskError::retryable("http_503", "upstream down");
        assert!(matches!(
            decide_failure(&e, 1, &policy(3), None, 0.5),
            FailureDecision::Retry { delay_ms: 50 }
        ));
        assert!(matches!(
            decide_failure(&e, 2, &policy(3), None, 0.5),
            FailureDecision::Retry { delay_ms: 100 }
        ));
        assert_eq!(
            decide_failure(&e, 3, &policy(3), None, 0.5),
            FailureDecision::Dead
        );
        assert_eq!(
            decide_failure(&e, 3, &policy(3), Some("backup"), 0.5),
            FailureDecision::Fallback {
                agent: "backup".into()
            }
        );
    }

    #[test]
    fn permanent_errors_skip_retries() {
        let e = TaskError::permanent("bad_input", "no");
        assert_eq!(
            decide_failure(&e, 1, &policy(5), None, 0.1),
            FailureDecision::Dead
        );
        assert_eq!(
            decide_failure(&e, 1, &policy(5), Some("fb"), 0.1),
            FailureDecision::Fallback { agent: "fb".into() }
        );
    }

    #[test]
    fn rate_limited_honours_retry_after() {
        let e = TaskError::rate_limited("slow down", Some(7_000));
        assert_eq!(
            decide_failure(&e, 1, &policy(5), None, 0.0),
            FailureDecision::Retry { delay_ms: 7_000 }
        );
        let e = TaskError::rate_limited("slow down", None);
        assert_eq!(
            decide_failure(&e, 1, &policy(5), None, 0.0),
            FailureDecision::Retry { delay_ms: 0 }
        );
    }

    #[test]
    fn status_strings_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!(
            "finished"
                .parse::<TaskStatus>()
                .unwrap_err()
                .contains("queued")
        );
    }

    #[test]
    fn terminal_states_only_leave_through_replay() {
        for from in TaskStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in TaskStatus::ALL {
                let allowed = from.can_transition_to(to);
                let replay = to == TaskStatus::Queued && from != TaskStatus::Succeeded;
                assert_eq!(allowed, replay, "{from} -> {to}");
            }
        }
    }

    /// A model of one task driven by random events through the same rules the engine uses.
    #[derive(Debug, Clone)]
    enum Step {
        Claim,
        Succeed,
        Fail(ErrorClass),
        Cancel,
        BackoffElapsed,
        Replay,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Claim),
            Just(Step::Succeed),
            prop_oneof![
                Just(ErrorClass::Retryable),
                Just(ErrorClass::Permanent),
                Just(ErrorClass::RateLimited)
            ]
            .prop_map(Step::Fail),
            Just(Step::Cancel),
            Just(Step::BackoffElapsed),
            Just(Step::Replay),
        ]
    }

    proptest! {
        #[test]
        fn random_event_sequences_respect_the_state_machine(
            steps in proptest::collection::vec(step(), 1..60),
            max in 1u32..6,
            has_fallback in any::<bool>(),
        ) {
            let p = policy(max);
            let fallback = has_fallback.then_some("fb");
            let mut status = TaskStatus::Queued;
            let mut attempts_in_run = 0u32;
            let mut total_attempts = 0u32;
            for s in steps {
                let next = match (&s, status) {
                    (Step::Claim, st) if st.is_queued() => {
                        attempts_in_run += 1;
                        total_attempts += 1;
                        Some(TaskStatus::Running)
                    }
                    (Step::Succeed, TaskStatus::Running) => Some(TaskStatus::Succeeded),
                    (Step::Fail(class), TaskStatus::Running) => {
                        let e = TaskError::new(*class, "x", "x");
                        Some(match decide_failure(&e, attempts_in_run, &p, fallback, 0.5) {
                            FailureDecision::Retry { .. } => {
                                prop_assert!(attempts_in_run < max);
                                prop_assert!(*class != ErrorClass::Permanent);
                                TaskStatus::Retrying
                            }
                            FailureDecision::Fallback { .. } => TaskStatus::Failed,
                            FailureDecision::Dead => {
                                prop_assert!(fallback.is_none());
                                TaskStatus::Dead
                            }
                        })
                    }
                    (Step::Cancel, st) if !st.is_terminal() => Some(TaskStatus::Cancelled),
                    (Step::BackoffElapsed, TaskStatus::Retrying) => None,
                    (Step::Replay, TaskStatus::Dead | TaskStatus::Failed | TaskStatus::Cancelled) => {
                        attempts_in_run = 0;
                        Some(TaskStatus::Queued)
                    }
                    _ => None,
                };
                if let Some(to) = next {
                    prop_assert!(status.can_transition_to(to), "{} -> {} via {:?}", status, to, s);
                    status = to;
                }
                prop_assert!(attempts_in_run <= max, "never more attempts than the policy allows");
                prop_assert!(attempts_in_run <= total_attempts);
            }
        }
    }
}
