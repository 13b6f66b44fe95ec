//! Batches travel to the database as one JSON array parameter (`jsonb_to_recordset` on
//! PostgreSQL, `json_each` on SQLite). The statement text never depends on the batch
//! size, so it stays prepared, and a batch costs one round trip. SQLite's two hottest
//! batches, new tasks and completions, go as bound rows instead (`values.rs`): there
//! the JSON functions cost the one writer thread more than the rows themselves.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::content::{escape_error, escape_value};
use switchyard_core::TaskId;
use switchyard_core::store::{Completion, NewTask, NumberAsk, NumberedEvent, Outcome, Transition};
use switchyard_core::task::{Attempt, AttemptStatus, TaskError, TaskStatus};

/// A stream event (progress, partial output) of a running attempt, numbered, on its way
/// into `task_stream`.
pub struct StreamRow {
    pub task_id: TaskId,
    /// Its number among the task's stream events (from 1).
    pub n: u64,
    pub seq: u64,
    pub attempt: u32,
    pub at: i64,
    /// The event's body as stored JSON text (`content::stored_json`).
    pub body: String,
}

/// Stream rows as one JSON array (for PostgreSQL: one parameter, one message).
pub(crate) fn stream_json(rows: &[StreamRow]) -> String {
    let mut out = String::with_capacity(rows.iter().map(|r| r.body.len() + 96).sum());
    out.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // The body is JSON text already: it goes in as it is, not as a string.
        out.push_str(&format!(
            r#"{{"id":"{}","n":{},"seq":{},"attempt":{},"at":{},"body":{}}}"#,
            r.task_id.0.simple(),
            r.n,
            r.seq,
            r.attempt,
            r.at,
            r.body
        ));
    }
    out.push(']');
    out
}

pub(crate) fn hex_id(id: &uuid::Uuid) -> String {
    id.simple().to_string()
}

/// A UUID as 32 lowercase hex digits (what `unhex()` and `::uuid` take), written
/// straight into the JSON being built.
struct Hex<'a>(&'a uuid::Uuid);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = uuid::Uuid::encode_buffer();
        s.serialize_str(self.0.simple().encode_lower(&mut buf))
    }
}

/// An optional JSON value as a one-element array, or an empty one for none (so that a
/// JSON `null` stays distinct from no value; see the SQL files).
struct Wrapped<'a, T>(Option<&'a T>);

impl<T: Serialize> Serialize for Wrapped<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

fn wrapped<T: Serialize + Clone, S: Serializer>(
    v: &Option<Cow<'_, T>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    Wrapped(v.as_deref()).serialize(s)
}

/// One row of `insert_tasks`: an array, by position (see the SQL file), written straight
/// from the task (nothing is copied but into the JSON text). The lease fields (20–24)
/// only for a task inserted claimed.
struct NewTaskRow<'a>(&'a NewTask);

impl Serialize for NewTaskRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let cached = t.cached_output.is_some();
        let claim = t.claim.as_ref().filter(|_| !cached);
        let mut row = s.serialize_seq(Some(if claim.is_some() { 25 } else { 20 }))?;
        row.serialize_element(&Hex(&t.id.0))?;
        row.serialize_element(&t.agent)?;
        row.serialize_element(t.initial_status().as_str())?;
        row.serialize_element(&t.initial_seq())?;
        row.serialize_element(&t.priority)?;
        row.serialize_element(&escape_value(&t.input))?;
        let cached_output = t.cached_output.as_ref().map(escape_value);
        row.serialize_element(&Wrapped(cached_output.as_deref()))?;
        row.serialize_element(&cached)?;
        row.serialize_element(&t.owner_id.as_ref().map(|u| Hex(&u.0)))?;
        row.serialize_element(&t.idempotency_key)?;
        row.serialize_element(&t.run_at.millis())?;
        row.serialize_element(&t.created_at.millis())?;
        row.serialize_element(&cached.then(|| t.created_at.millis()))?;
        row.serialize_element(&t.parent_id.as_ref().map(|u| Hex(&u.0)))?;
        row.serialize_element(&t.fallback_of.as_ref().map(|u| Hex(&u.0)))?;
        row.serialize_element(&t.trace_id)?;
        row.serialize_element(&t.flow_key)?;
        row.serialize_element(&switchyard_core::flow::fair_key(
            t.flow_key.as_deref(),
            t.owner_id,
        ))?;
        row.serialize_element(&t.schedule)?;
        row.serialize_element(&t.scheduled_for.map(|s| s.millis()))?;
        if let Some(c) = claim {
            row.serialize_element(&1)?;
            row.serialize_element(&Hex(&c.worker_id.0))?;
            row.serialize_element(&c.worker_name)?;
            row.serialize_element(&c.lease_expires_at.millis())?;
            row.serialize_element(&t.created_at.millis())?;
        }
        row.end()
    }
}

pub(crate) fn new_tasks_json(batch: &[NewTask]) -> String {
    let rows: Vec<NewTaskRow<'_>> = batch.iter().map(NewTaskRow).collect();
    to_json(&rows)
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing plain data into a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Keeps the first completion per task: one statement cannot update a row twice.
pub(crate) fn dedupe_completions(batch: &[Completion]) -> Vec<&Completion> {
    let mut seen = HashSet::with_capacity(batch.len());
    batch.iter().filter(|c| seen.insert(c.task_id)).collect()
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

/// What a completion writes besides its status: output, error, the retry's time, the
/// fallback task.
pub(crate) struct OutcomeFields<'a> {
    pub output: Option<&'a Value>,
    pub error: Option<&'a TaskError>,
    pub run_at: Option<i64>,
    pub fallback: Option<&'a uuid::Uuid>,
}

pub(crate) fn outcome_fields(outcome: &Outcome) -> OutcomeFields<'_> {
    let none = OutcomeFields {
        output: None,
        error: None,
        run_at: None,
        fallback: None,
    };
    match outcome {
        Outcome::Succeeded { output } => OutcomeFields {
            output: Some(output),
            ..none
        },
        Outcome::Retry { error, run_at } => OutcomeFields {
            error: Some(error),
            run_at: Some(run_at.millis()),
            ..none
        },
        Outcome::Fallback { error, fallback } => OutcomeFields {
            error: Some(error),
            fallback: Some(&fallback.id.0),
            ..none
        },
        Outcome::Dead { error } => OutcomeFields {
            error: Some(error),
            ..none
        },
        Outcome::Cancelled { error } => OutcomeFields {
            error: error.as_ref(),
            ..none
        },
    }
}

/// One row of `complete_tasks` / `record_attempts`: an array, by position (see the SQL
/// files), borrowing from the completion.
#[derive(Serialize)]
struct CompletionRow<'a>(
    Hex<'a>,
    u32,
    i64,
    &'static str,
    &'static str,
    Option<i64>,
    #[serde(serialize_with = "wrapped")] Option<Cow<'a, Value>>,
    #[serde(serialize_with = "wrapped")] Option<Cow<'a, TaskError>>,
    Option<i64>,
    Option<Hex<'a>>,
);

pub(crate) fn completions_json(batch: &[&Completion]) -> String {
    let rows: Vec<CompletionRow<'_>> = batch
        .iter()
        .map(|c| {
            let (status, attempt_status) = outcome_status(&c.outcome);
            let OutcomeFields {
                output,
                error,
                run_at,
                fallback,
            } = outcome_fields(&c.outcome);
            CompletionRow(
                Hex(&c.task_id.0),
                c.attempt,
                c.at.millis(),
                status.as_str(),
                attempt_status.as_str(),
                status.is_terminal().then(|| c.at.millis()),
                output.map(escape_value),
                error.map(escape_error),
                run_at,
                fallback.map(Hex),
            )
        })
        .collect();
    to_json(&rows)
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
    let claimed = t.claim.is_some() && !cached;
    switchyard_core::task::Task {
        id: t.id,
        agent: t.agent.clone(),
        status: t.initial_status(),
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
        started_at: claimed.then_some(t.created_at),
        finished_at: cached.then_some(t.created_at),
        // The running attempt, as `get_task` shows it.
        attempts: t
            .claim
            .iter()
            .filter(|_| claimed)
            .map(|c| Attempt {
                number: 1,
                status: AttemptStatus::Running,
                worker_id: Some(c.worker_id),
                worker: Some(c.worker_name.clone()),
                started_at: t.created_at,
                finished_at: None,
                error: None,
            })
            .collect(),
        parent_id: t.parent_id,
        fallback_of: t.fallback_of,
        fallback_task_id: None,
        trace_id: t.trace_id.clone(),
        cancel_requested: false,
        seq: t.initial_seq(),
        wait: None,
        concurrency_key: t.flow_key.clone(),
        schedule: t.schedule.clone(),
        scheduled_for: t.scheduled_for,
    }
}

/// Blocks of event numbers asked for, as `[{id, attempt, n}]` in task order (so that
/// concurrent writers lock task rows in one order).
pub(crate) fn number_asks(asks: &[NumberAsk]) -> String {
    let mut sorted: Vec<&NumberAsk> = asks.iter().collect();
    sorted.sort_by_key(|a| (a.task_id.0, a.attempt));
    Value::Array(
        sorted
            .iter()
            .map(|a| json!({"id": hex_id(&a.task_id.0), "attempt": a.attempt, "n": a.count}))
            .collect(),
    )
    .to_string()
}

/// Numbered live events being stored, per task: the newest seq and how many of them are
/// stream events (progress, partial output), which the task counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredCount {
    pub newest: u64,
    pub stream: u64,
}

/// The per-task counts of `events`, and them as `[{id, m, s}]` in task order.
pub(crate) fn stored_counts(
    events: &[NumberedEvent],
) -> (String, std::collections::BTreeMap<TaskId, StoredCount>) {
    let mut counts = std::collections::BTreeMap::new();
    for e in events {
        let c = counts.entry(e.event.task_id).or_insert(StoredCount {
            newest: 0,
            stream: 0,
        });
        c.newest = c.newest.max(e.event.seq);
        c.stream += u64::from(e.event.body.is_stream());
    }
    let json = Value::Array(
        counts
            .iter()
            .map(|(id, c)| json!({"id": hex_id(&id.0), "m": c.newest, "s": c.stream}))
            .collect(),
    )
    .to_string();
    (json, counts)
}
