//! A task as its timeline and its log as the API shows them: figures derived from the
//! attempts, log lines without the task id the path already names.

use serde::Serialize;
use switchyard_core::event::LogLevel;
use switchyard_core::store::TaskLogLine;
use switchyard_core::task::{AttemptStatus, Task, TaskStatus};
use switchyard_core::{TaskId, Timestamp};
use utoipa::ToSchema;

/// One attempt on the timeline: queued → claimed (started) → finished.
#[derive(Serialize, ToSchema)]
pub struct AttemptSpan {
    pub number: u32,
    pub status: AttemptStatus,
    pub worker: Option<String>,
    /// When the task started waiting for this attempt: its creation for the first
    /// attempt, the end of the previous attempt otherwise.
    pub queued_at: Timestamp,
    /// When a worker claimed the task and the attempt started.
    pub claimed_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `queued_at` → `claimed_at` (includes any backoff or `run_at` delay).
    pub wait_ms: u64,
    /// `claimed_at` → `finished_at`; absent while running.
    pub run_ms: Option<u64>,
    /// The error code of a failed attempt.
    pub error_code: Option<String>,
}

/// A task's trace: its W3C trace id and the timeline of its attempts.
#[derive(Serialize, ToSchema)]
pub struct TaskTrace {
    pub task_id: TaskId,
    /// The trace id (from the submitter's `traceparent`, or generated); remote workers
    /// receive it as `traceparent` in `assign`.
    pub trace_id: Option<String>,
    pub status: TaskStatus,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Submit → finish, for finished tasks.
    pub total_ms: Option<u64>,
    pub attempts: Vec<AttemptSpan>,
    /// The task whose failure created this one (a fallback).
    pub fallback_of: Option<TaskId>,
    /// The fallback task that took over after this one failed.
    pub fallback_task_id: Option<TaskId>,
}

impl From<&Task> for TaskTrace {
    /// The timeline of `task`'s attempts.
    fn from(task: &Task) -> Self {
        let mut queued_at = task.created_at;
        let attempts = task
            .attempts
            .iter()
            .map(|a| {
                let span = AttemptSpan {
                    number: a.number,
                    status: a.status,
                    worker: a.worker.clone(),
                    queued_at,
                    claimed_at: a.started_at,
                    finished_at: a.finished_at,
                    wait_ms: a.started_at.since(queued_at),
                    run_ms: a.finished_at.map(|f| f.since(a.started_at)),
                    error_code: a.error.as_ref().map(|e| e.code.clone()),
                };
                queued_at = a.finished_at.unwrap_or(a.started_at);
                span
            })
            .collect();
        TaskTrace {
            task_id: task.id,
            trace_id: task.trace_id.clone(),
            status: task.status,
            created_at: task.created_at,
            finished_at: task.finished_at,
            total_ms: task.finished_at.map(|f| f.since(task.created_at)),
            attempts,
            fallback_of: task.fallback_of,
            fallback_task_id: task.fallback_task_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LogLine {
    pub seq: u64,
    pub attempt: u32,
    pub at: Timestamp,
    pub level: LogLevel,
    pub message: String,
}

impl From<TaskLogLine> for LogLine {
    fn from(line: TaskLogLine) -> Self {
        LogLine {
            seq: line.seq,
            attempt: line.attempt,
            at: line.at,
            level: line.level,
            message: line.message,
        }
    }
}
