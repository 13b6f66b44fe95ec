//! Batches travel to the database as one JSON array parameter (`json_each` on SQLite,
//! `jsonb_to_recordset` on PostgreSQL). The statement text never depends on the batch
//! size, so it stays prepared, and a batch costs one round trip.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use switchyard_core::TaskId;
use switchyard_core::store::{Completion, EventDraft, NewTask, Outcome, Transition};
use switchyard_core::task::{AttemptStatus, TaskStatus};

pub(crate) fn hex_id(id: &uuid::Uuid) -> String {
    id.simple().to_string()
}

fn put_opt(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        obj.insert(key.to_owned(), v);
    }
}

pub(crate) fn new_tasks_json(batch: &[NewTask]) -> String {
    let items: Vec<Value> = batch
        .iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("id".into(), hex_id(&t.id.0).into());
            o.insert("agent".into(), t.agent.clone().into());
            let status = if t.cached_output.is_some() {
                TaskStatus::Succeeded
            } else {
                TaskStatus::Queued
            };
            o.insert("status".into(), status.as_str().into());
            o.insert("priority".into(), t.priority.into());
            o.insert("input".into(), t.input.clone());
            put_opt(&mut o, "output", t.cached_output.clone());
            o.insert("cached".into(), t.cached_output.is_some().into());
            put_opt(&mut o, "owner_id", t.owner_id.map(|u| hex_id(&u.0).into()));
            put_opt(
                &mut o,
                "idempotency_key",
                t.idempotency_key.clone().map(Into::into),
            );
            o.insert("run_at".into(), t.run_at.millis().into());
            o.insert("created_at".into(), t.created_at.millis().into());
            put_opt(
                &mut o,
                "finished_at",
                t.cached_output
                    .as_ref()
                    .map(|_| t.created_at.millis().into()),
            );
            put_opt(
                &mut o,
                "parent_id",
                t.parent_id.map(|u| hex_id(&u.0).into()),
            );
            put_opt(
                &mut o,
                "fallback_of",
                t.fallback_of.map(|u| hex_id(&u.0).into()),
            );
            put_opt(&mut o, "trace_id", t.trace_id.clone().map(Into::into));
            Value::Object(o)
        })
        .collect();
    Value::Array(items).to_string()
}

/// Keeps the first completion per task: one statement cannot update a row twice.
pub(crate) fn dedupe_completions(batch: Vec<Completion>) -> Vec<Completion> {
    let mut seen = HashSet::with_capacity(batch.len());
    batch
        .into_iter()
        .filter(|c| seen.insert(c.task_id))
        .collect()
}

pub(crate) fn outcome_status(outcome: &Outcome) -> (TaskStatus, AttemptStatus) {
    match outcome {
        Outcome::Succeeded { .. } => (TaskStatus::Succeeded, AttemptStatus::Succeeded),
        Outcome::Retry { .. } => (TaskStatus::Retrying, AttemptStatus::Failed),
        Outcome::Fallback { .. } => (TaskStatus::Failed, AttemptStatus::Failed),
        Outcome::Dead { .. } => (TaskStatus::Dead, AttemptStatus::Failed),
        Outcome::Cancelled { .. } => (TaskStatus::Cancelled, AttemptStatus::Cancelled),
    }
}

pub(crate) fn completions_json(batch: &[Completion]) -> String {
    let items: Vec<Value> = batch
        .iter()
        .map(|c| {
            let (status, attempt_status) = outcome_status(&c.outcome);
            let mut o = Map::new();
            o.insert("id".into(), hex_id(&c.task_id.0).into());
            o.insert("attempt".into(), c.attempt.into());
            o.insert("at".into(), c.at.millis().into());
            o.insert("status".into(), status.as_str().into());
            o.insert("attempt_status".into(), attempt_status.as_str().into());
            if status.is_terminal() {
                o.insert("finished_at".into(), c.at.millis().into());
            }
            match &c.outcome {
                Outcome::Succeeded { output } => {
                    o.insert("output".into(), output.clone());
                }
                Outcome::Retry { error, run_at } => {
                    o.insert("error".into(), json!(error));
                    o.insert("run_at".into(), run_at.millis().into());
                }
                Outcome::Fallback { error, fallback } => {
                    o.insert("error".into(), json!(error));
                    o.insert("fallback_task_id".into(), hex_id(&fallback.id.0).into());
                }
                Outcome::Dead { error } => {
                    o.insert("error".into(), json!(error));
                }
                Outcome::Cancelled { error } => {
                    put_opt(&mut o, "error", error.as_ref().map(|e| json!(e)));
                }
            }
            Value::Object(o)
        })
        .collect();
    Value::Array(items).to_string()
}

/// Fills a transition's payload from the completion that caused it.
pub(crate) fn enrich(mut t: Transition, c: &Completion) -> Transition {
    match &c.outcome {
        Outcome::Succeeded { output } => t.output = Some(output.clone()),
        Outcome::Retry { error, .. } | Outcome::Dead { error } => t.error = Some(error.clone()),
        Outcome::Fallback { error, fallback } => {
            t.error = Some(error.clone());
            t.fallback_task_id = Some(fallback.id);
        }
        Outcome::Cancelled { error } => t.error = error.clone(),
    }
    t
}

/// The task as just inserted, without a round trip to read it back.
pub(crate) fn inserted_task(t: &NewTask) -> switchyard_core::task::Task {
    let cached = t.cached_output.is_some();
    switchyard_core::task::Task {
        id: t.id,
        agent: t.agent.clone(),
        status: if cached {
            TaskStatus::Succeeded
        } else {
            TaskStatus::Queued
        },
        priority: t.priority,
        input: t.input.clone(),
        output: t.cached_output.clone(),
        error: None,
        cached,
        owner_id: t.owner_id,
        idempotency_key: t.idempotency_key.clone(),
        run_at: t.run_at,
        created_at: t.created_at,
        updated_at: t.created_at,
        started_at: None,
        finished_at: cached.then_some(t.created_at),
        attempts: Vec::new(),
        parent_id: t.parent_id,
        fallback_of: t.fallback_of,
        fallback_task_id: None,
        trace_id: t.trace_id.clone(),
        cancel_requested: false,
        seq: 1,
    }
}

/// Groups live-event drafts per running attempt, keeping their order, as
/// `[{id, attempt, n}]` for the sequence reservation.
pub(crate) fn seq_requests(drafts: &[EventDraft]) -> (String, Vec<(TaskId, u32, u64)>) {
    let mut order: Vec<(TaskId, u32, u64)> = Vec::new();
    let mut index: std::collections::HashMap<(TaskId, u32), usize> =
        std::collections::HashMap::new();
    for d in drafts {
        let i = *index.entry((d.task_id, d.attempt)).or_insert_with(|| {
            order.push((d.task_id, d.attempt, 0));
            order.len() - 1
        });
        order[i].2 += 1;
    }
    let json = Value::Array(
        order
            .iter()
            .map(|(id, attempt, n)| json!({"id": hex_id(&id.0), "attempt": attempt, "n": n}))
            .collect(),
    )
    .to_string();
    (json, order)
}
