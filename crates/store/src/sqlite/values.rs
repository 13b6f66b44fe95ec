//! SQLite batches as multi-row `VALUES` with bound parameters.
//!
//! SQLite's JSON functions cost the one writer thread about a third of its time when a
//! batch travelled as one JSON parameter (`jsonb_each` and `->>` per field, per row).
//! Bound parameters go straight into the statement instead. To keep the statement texts
//! few (each is prepared once per connection and cached), a statement has a fixed number
//! of rows, its *shape*: a batch goes in the smallest shape that holds it, padded with
//! rows of NULLs that the statements skip (their id is NULL), and one bigger than
//! [`CHUNK`] rows in several statements. One statement per command matters as much as
//! the binding: each command is a hop to the connection's thread and back, and on a busy
//! machine those hops, not SQLite, set the pace. PostgreSQL keeps the JSON parameter
//! (`batch.rs`): there the statement runs in another process and one parameter is one
//! message.

use std::sync::LazyLock;

use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use switchyard_core::store::{Completion, NewTask};

use crate::batch::{OutcomeFields, StreamRow, outcome_fields, outcome_status};
use crate::content::{escape_error, escape_value};

/// Rows per statement, smallest first; the largest is the chunk size. Each shape at
/// most doubles the one before, so padding costs less than the rows. A prepared
/// statement's memory grows with its rows: with shapes up to 1,024 a server kept about
/// 20 MB more after a load than with JSON, so bigger batches are statements of 256.
const SHAPES: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/// Rows of the largest statement: a bigger batch is several statements.
pub(crate) const CHUNK: usize = SHAPES[SHAPES.len() - 1];

const INSERT_COLUMNS: usize = 25;
const COMPLETION_COLUMNS: usize = 10;
const STREAM_COLUMNS: usize = 6;
/// SQLite's limit on parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const _: () = assert!(CHUNK * INSERT_COLUMNS <= 32_766 && 2 * CHUNK * COMPLETION_COLUMNS <= 32_766);

/// Index into [`SHAPES`] of the smallest shape that holds `n` rows (`n <= CHUNK`).
fn shape(n: usize) -> usize {
    SHAPES
        .iter()
        .position(|&s| s >= n)
        .unwrap_or(SHAPES.len() - 1)
}

/// `(?, ?, …), (…)`: `rows` rows of `columns` parameters. Anonymous ones: SQLite finds a
/// numbered parameter's name by a linear search, so binding n of them costs n².
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

fn per_shape(template: &str, columns: usize) -> Vec<String> {
    SHAPES
        .iter()
        .map(|&rows| template.replace("{rows}", &placeholders(rows, columns)))
        .collect()
}

/// A write transaction as one command (see `in_one_trip!` in `sqlite.rs`).
fn one_trip(statements: &[&str]) -> String {
    let mut s = String::from("PRAGMA synchronous = NORMAL;\nBEGIN IMMEDIATE;\n");
    for statement in statements {
        s.push_str(statement);
        s.push_str(";\n");
    }
    s.push_str("COMMIT");
    s
}

/// Every statement text, per shape.
struct Texts {
    insert: Vec<String>,
    insert_or_skip: Vec<String>,
    insert_trip: Vec<String>,
    record_attempts: Vec<String>,
    complete: Vec<String>,
    complete_trip: Vec<String>,
    insert_stream: Vec<String>,
}

static TEXTS: LazyLock<Texts> = LazyLock::new(|| {
    let insert = per_shape(crate::sql::sql!("sqlite", "insert_tasks"), INSERT_COLUMNS);
    let record_attempts = per_shape(
        crate::sql::sql!("sqlite", "record_attempts"),
        COMPLETION_COLUMNS,
    );
    let complete = per_shape(
        crate::sql::sql!("sqlite", "complete_tasks"),
        COMPLETION_COLUMNS,
    );
    Texts {
        insert_or_skip: insert
            .iter()
            .map(|s| format!("{s}\nON CONFLICT DO NOTHING\nRETURNING id"))
            .collect(),
        insert_trip: insert.iter().map(|s| one_trip(&[s])).collect(),
        complete_trip: record_attempts
            .iter()
            .zip(&complete)
            .map(|(r, c)| one_trip(&[r, c]))
            .collect(),
        insert,
        record_attempts,
        complete,
        insert_stream: per_shape(crate::sql::sql!("sqlite", "insert_stream"), STREAM_COLUMNS),
    }
});

/// Which statement of a family.
#[derive(Clone, Copy)]
pub(crate) enum Insert {
    /// Fresh ids: a duplicate fails the statement.
    Plain,
    /// Rows whose idempotency key (or id) exists are skipped; the inserted ids come back.
    OrSkip,
    /// [`Insert::Plain`] as a whole transaction in one command (one chunk only).
    OneTrip,
}

#[derive(Clone, Copy)]
pub(crate) enum Completions {
    RecordAttempts,
    Update,
    /// Both, as a whole transaction in one command (one chunk only).
    OneTrip,
}

/// The insert of `chunk` (at most [`CHUNK`] tasks), its parameters bound.
pub(crate) fn insert(kind: Insert, chunk: &[NewTask]) -> Query<'static, Sqlite, SqliteArguments> {
    let i = shape(chunk.len());
    let texts = &*TEXTS;
    let text = match kind {
        Insert::Plain => &texts.insert[i],
        Insert::OrSkip => &texts.insert_or_skip[i],
        Insert::OneTrip => &texts.insert_trip[i],
    };
    let mut q = sqlx::query(text.as_str());
    for t in chunk {
        let cached = t.cached_output.is_some();
        let claim = t.claim.as_ref().filter(|_| !cached);
        q = q
            .bind(t.id.0)
            .bind(t.agent.as_str())
            .bind(t.initial_status().as_str())
            .bind(t.initial_seq() as i64)
            .bind(t.priority)
            .bind(json_text(&escape_value(&t.input)))
            .bind(
                t.cached_output
                    .as_ref()
                    .map(|o| json_text(&escape_value(o))),
            )
            .bind(cached)
            .bind(t.owner_id.map(|u| u.0))
            .bind(t.idempotency_key.as_deref())
            .bind(t.run_at.millis())
            .bind(t.created_at.millis())
            .bind(cached.then(|| t.created_at.millis()))
            .bind(t.parent_id.map(|p| p.0))
            .bind(t.fallback_of.map(|p| p.0))
            .bind(t.trace_id.as_deref())
            .bind(t.flow_key.as_deref())
            .bind(switchyard_core::flow::fair_key(
                t.flow_key.as_deref(),
                t.owner_id,
            ))
            .bind(t.schedule.as_deref())
            .bind(t.scheduled_for.map(|s| s.millis()))
            .bind(if claim.is_some() { 1_i64 } else { 0 })
            .bind(claim.map(|c| c.worker_id.0))
            .bind(claim.map(|c| c.worker_name.as_str()))
            .bind(claim.map(|c| c.lease_expires_at.millis()))
            .bind(claim.map(|_| t.created_at.millis()));
    }
    pad(q, SHAPES[i] - chunk.len(), INSERT_COLUMNS)
}

/// The completion statement(s) of `chunk` (at most [`CHUNK`] completions, one per task),
/// parameters bound.
pub(crate) fn complete(
    kind: Completions,
    chunk: &[&Completion],
) -> Query<'static, Sqlite, SqliteArguments> {
    let i = shape(chunk.len());
    let texts = &*TEXTS;
    let text = match kind {
        Completions::RecordAttempts => &texts.record_attempts[i],
        Completions::Update => &texts.complete[i],
        Completions::OneTrip => &texts.complete_trip[i],
    };
    // The one-trip command is two statements; each takes its own copy of the rows,
    // serialized once.
    let copies = if matches!(kind, Completions::OneTrip) {
        2
    } else {
        1
    };
    let rows: Vec<CompletionValues<'_>> = chunk.iter().map(|c| CompletionValues::of(c)).collect();
    let mut q = sqlx::query(text.as_str());
    for _ in 0..copies {
        for r in &rows {
            q = r.bind(q);
        }
        q = pad(q, SHAPES[i] - chunk.len(), COMPLETION_COLUMNS);
    }
    q
}

/// One row of the completion statements, its JSON already written.
struct CompletionValues<'a> {
    completion: &'a Completion,
    output: Option<String>,
    error: Option<String>,
    run_at: Option<i64>,
    fallback: Option<&'a uuid::Uuid>,
}

impl<'a> CompletionValues<'a> {
    fn of(completion: &'a Completion) -> Self {
        let OutcomeFields {
            output,
            error,
            run_at,
            fallback,
        } = outcome_fields(&completion.outcome);
        CompletionValues {
            completion,
            output: output.map(|o| json_text(&escape_value(o))),
            error: error.map(|e| json_text(&escape_error(e))),
            run_at,
            fallback,
        }
    }

    fn bind(
        &self,
        q: Query<'static, Sqlite, SqliteArguments>,
    ) -> Query<'static, Sqlite, SqliteArguments> {
        let c = self.completion;
        let (status, attempt_status) = outcome_status(&c.outcome);
        q.bind(c.task_id.0)
            .bind(i64::from(c.attempt))
            .bind(c.at.millis())
            .bind(status.as_str())
            .bind(attempt_status.as_str())
            .bind(status.is_terminal().then(|| c.at.millis()))
            .bind(self.output.as_deref())
            .bind(self.error.as_deref())
            .bind(self.run_at)
            .bind(self.fallback.copied())
    }
}

/// The insert of `chunk` (at most [`CHUNK`] stream events), its parameters bound.
pub(crate) fn insert_stream(chunk: &[StreamRow]) -> Query<'_, Sqlite, SqliteArguments> {
    let i = shape(chunk.len());
    let mut q = sqlx::query(TEXTS.insert_stream[i].as_str());
    for r in chunk {
        q = q
            .bind(r.task_id.0)
            .bind(i64::try_from(r.n).unwrap_or(i64::MAX))
            .bind(i64::try_from(r.seq).unwrap_or(i64::MAX))
            .bind(i64::from(r.attempt))
            .bind(r.at)
            .bind(r.body.as_str());
    }
    pad(q, SHAPES[i] - chunk.len(), STREAM_COLUMNS)
}

fn pad<'q>(
    mut q: Query<'q, Sqlite, SqliteArguments>,
    rows: usize,
    columns: usize,
) -> Query<'q, Sqlite, SqliteArguments> {
    for _ in 0..rows * columns {
        q = q.bind(None::<i64>);
    }
    q
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data into a String cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_hold_their_rows_with_little_padding() {
        assert_eq!(SHAPES[shape(1)], 1);
        assert_eq!(SHAPES[shape(3)], 4);
        assert_eq!(SHAPES[shape(17)], 32);
        assert_eq!(SHAPES[shape(64)], 64);
        assert_eq!(SHAPES[shape(200)], 256);
        for n in 1..=CHUNK {
            let s = SHAPES[shape(n)];
            assert!(s >= n && s < 2 * n, "{n} rows in a statement of {s}");
        }
    }

    #[test]
    fn statements_have_a_parameter_per_column_and_row() {
        assert_eq!(placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
        let params = |s: &str| s.matches('?').count();
        assert_eq!(params(&TEXTS.insert[shape(CHUNK)]), CHUNK * INSERT_COLUMNS);
        assert_eq!(
            params(&TEXTS.complete_trip[shape(3)]),
            2 * 4 * COMPLETION_COLUMNS
        );
        assert!(!TEXTS.complete_trip[0].contains("{rows}"));
    }
}
