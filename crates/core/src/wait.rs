//! Durable waits: a run of a task that ends without failing, because the task waits for
//! time to pass, for a signal, or for its child tasks. The task shows `waiting`, holds no
//! worker slot, and is queued again as a new run when the wait is over.
//!
//! A wait is a step of its task (see [`crate::step`]): its name is a step name, and once
//! over, its result is a succeeded step — `null` after a sleep, a signal's payload, the
//! children's results — that later runs find memoized. A signal wait that timed out is a
//! failed step with code [`codes::WAIT_TIMEOUT`].

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::ids::TaskId;
use crate::step::{Step, check_step_name};
use crate::task::{TaskError, TaskStatus};
use crate::time::Timestamp;

/// Codes of waits, signals and spawns.
pub mod codes {
    /// A signal wait's timeout passed before the signal came.
    pub const WAIT_TIMEOUT: &str = "wait_timeout";
    /// A wait the server cannot take (bad kind, field or child).
    pub const INVALID_WAIT: &str = "invalid_wait";
    /// The task holds the most child tasks allowed.
    pub const TOO_MANY_CHILDREN: &str = "too_many_children";
}

/// Most signals kept for a task that has not waited for them yet.
pub const MAX_PENDING_SIGNALS: u32 = 100;

/// Most child tasks one wait may join.
pub const MAX_JOINED_CHILDREN: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    Sleep,
    Signal,
    Children,
}

impl WaitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::Sleep => "sleep",
            WaitKind::Signal => "signal",
            WaitKind::Children => "children",
        }
    }
}

/// What a `waiting` task waits for (`wait` on the task, and on its `waiting` event).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Wait {
    pub kind: WaitKind,
    /// The wait's step name.
    pub name: String,
    /// For `signal`: the signal's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// When a sleep ends, or a signal wait times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// For `children`: the child tasks joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TaskId>,
}

impl Wait {
    /// A wait of `kind` named `name`, its other fields empty.
    pub fn named(kind: WaitKind, name: String) -> Wait {
        Wait {
            kind,
            name,
            signal: None,
            until: None,
            children: Vec::new(),
        }
    }

    /// Checks a wait a worker asked for, with the time it arrived; a refusal says why.
    pub fn check(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::new(ErrorCode::InvalidParameter, m));
        check_step_name(&self.name)?;
        match self.kind {
            WaitKind::Sleep => {
                if self.until.is_none() {
                    return invalid("a sleep needs `duration_ms` or `until`".into());
                }
            }
            WaitKind::Signal => match &self.signal {
                Some(s) => check_signal_name(s)?,
                None => return invalid("a signal wait needs `signal`, the signal's name".into()),
            },
            WaitKind::Children => {
                if self.children.is_empty() {
                    return invalid("a join needs `children`, at least one child task id".into());
                }
                if self.children.len() > MAX_JOINED_CHILDREN {
                    return invalid(format!(
                        "a join may name at most {MAX_JOINED_CHILDREN} children, got {}",
                        self.children.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A signal name is 1–200 characters without U+0000 or `/` (it is a path segment).
pub fn check_signal_name(name: &str) -> Result<(), Error> {
    check_step_name(name).map_err(|_| {
        Error::new(
            ErrorCode::InvalidParameter,
            "a signal name must be 1-200 characters without U+0000",
        )
    })?;
    if name.contains('/') {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            "a signal name may not contain `/`",
        ));
    }
    Ok(())
}

/// What became of a wait a running attempt asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum WaitBegun {
    /// Already over: go on with the step's output. `recorded`: the step was recorded
    /// now (false: it had succeeded in an earlier run).
    Ready { step: Step, recorded: bool },
    /// The run is over: the task is `waiting` (its event is numbered `seq`).
    Suspended { seq: u64 },
    /// The signal wait timed out in an earlier run.
    TimedOut,
    /// The task is not running that attempt (any more).
    LeaseLost,
    /// A `children` id is not a child of the task.
    NotAChild(TaskId),
    /// The task holds the most steps allowed; this wait would be a new one.
    TooManySteps,
}

/// Why a waiting task runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResumeReason {
    /// The sleep is over.
    Time,
    Signal,
    Children,
    /// The signal wait's timeout passed.
    Timeout,
}

/// A waiting task queued again.
#[derive(Clone, Debug, PartialEq)]
pub struct Resumed {
    pub task_id: TaskId,
    pub agent: String,
    pub owner_id: Option<crate::UserId>,
    pub reason: ResumeReason,
    /// The number of its `resumed` event.
    pub seq: u64,
    /// The wait's step as recorded on resuming.
    pub step: Step,
}

/// What became of a signal sent to a task.
#[derive(Clone, Debug, PartialEq)]
pub enum SignalSent {
    /// Kept until the task waits for it; `seq` numbers the `signal_received` event.
    Kept { seq: u64 },
    /// The task was waiting for it and is queued again.
    Resumed {
        signal_seq: u64,
        resumed: Box<Resumed>,
    },
}

/// How a joined child ended, as its parent's join returns it.
pub fn child_result(
    id: TaskId,
    status: TaskStatus,
    output: Option<Value>,
    error: Option<TaskError>,
) -> Value {
    match status {
        TaskStatus::Succeeded => json!({
            "task_id": id, "status": status, "output": output.unwrap_or(Value::Null)
        }),
        _ => json!({ "task_id": id, "status": status, "error": error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(kind: WaitKind) -> Wait {
        Wait::named(kind, "w".into())
    }

    #[test]
    fn each_kind_needs_its_field() {
        assert!(wait(WaitKind::Sleep).check().is_err());
        assert!(wait(WaitKind::Signal).check().is_err());
        assert!(wait(WaitKind::Children).check().is_err());
        let sleep = Wait {
            until: Some(Timestamp::from_millis(1)),
            ..wait(WaitKind::Sleep)
        };
        assert!(sleep.check().is_ok());
        let signal = Wait {
            signal: Some("approval".into()),
            ..wait(WaitKind::Signal)
        };
        assert!(signal.check().is_ok());
        let bad = Wait {
            signal: Some("a/b".into()),
            ..wait(WaitKind::Signal)
        };
        assert!(bad.check().is_err());
        let join = Wait {
            children: vec![TaskId::new()],
            ..wait(WaitKind::Children)
        };
        assert!(join.check().is_ok());
    }

    #[test]
    fn a_child_result_carries_output_or_error() {
        let id = TaskId::new();
        let ok = child_result(id, TaskStatus::Succeeded, Some(json!(1)), None);
        assert_eq!(ok["output"], 1);
        let err = child_result(
            id,
            TaskStatus::Dead,
            None,
            Some(TaskError::permanent("boom", "it broke")),
        );
        assert_eq!(err["status"], "dead");
        assert_eq!(err["error"]["code"], "boom");
    }
}
