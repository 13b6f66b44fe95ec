//! Decoding rows into domain types, once for every backend.
//!
//! Both backends store the same logical columns (UUIDs natively or as 16-byte blobs,
//! JSON as jsonb or text, times as BIGINT milliseconds). [`Col`] hides the row type so
//! each decoder is written once.

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use switchyard_core::agent::{Agent, AgentSpec};
use switchyard_core::auth::{ApiKey, Scope, Session, User};
use switchyard_core::store::{
    AttemptRef, ClaimedTask, StreamEvent, TaskLogLine, Transition, WorkerInfo,
};
use switchyard_core::task::{Attempt, AttemptStatus, Task, TaskError, TaskStatus};
use switchyard_core::{Error, Result, TaskId, Timestamp, UserId};

/// Maps a driver error: lost connections are `unavailable` (callers may retry), the rest
/// `internal`. The cause is kept for logs.
pub(crate) fn db_err(context: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| {
        let unavailable = matches!(
            &e,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
        ) || is_transient(&e);
        if unavailable {
            let mut err = Error::unavailable(format!("database unavailable ({context})"));
            err.source = Some(Box::new(e));
            err
        } else if let Some(message) = refused_value(&e) {
            // The value, not the server, is at fault: the caller may isolate it.
            let mut err = Error::new(
                switchyard_core::ErrorCode::ValidationFailed,
                format!("a value could not be stored: {message}"),
            );
            err.source = Some(Box::new(e));
            err
        } else {
            Error::internal(format!("database error ({context})"), e)
        }
    }
}

/// PostgreSQL conditions that go away by themselves: a server shutting down or starting
/// (`57P01`–`57P03`), lost connections (class `08`), and deadlocks or serialization
/// failures between concurrent transactions (`40P01`, `40001`). Callers retry these.
fn is_transient(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    d.code().is_some_and(|code| {
        matches!(
            code.as_ref(),
            "57P01" | "57P02" | "57P03" | "40P01" | "40001"
        ) || code.starts_with("08")
    })
}

/// PostgreSQL's data exceptions (class `22`: a value it cannot hold or convert), with
/// the database's description of the value's fault.
fn refused_value(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(d) = e else {
        return None;
    };
    d.code()
        .is_some_and(|code| code.starts_with("22"))
        .then(|| d.message().to_owned())
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> Error {
    Error::internal_msg(format!("unreadable value in column {column}: {detail}"))
}

/// Typed column access shared by the SQLite and PostgreSQL row types.
pub trait Col {
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>>;
    fn i64(&self, col: &str) -> Result<i64>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>>;
    fn string(&self, col: &str) -> Result<String>;
    fn opt_string(&self, col: &str) -> Result<Option<String>>;
    fn boolean(&self, col: &str) -> Result<bool>;
    fn json_value(&self, col: &str) -> Result<Value>;
    fn opt_json_value(&self, col: &str) -> Result<Option<Value>>;
    fn f64(&self, col: &str) -> Result<f64>;
    fn opt_f64(&self, col: &str) -> Result<Option<f64>>;
    /// Columns by position, for statements that select one unnamed value.
    fn uuid_at(&self, index: usize) -> Result<Uuid>;
    fn i64_at(&self, index: usize) -> Result<i64>;
    fn opt_i64_at(&self, index: usize) -> Result<Option<i64>>;
    fn string_at(&self, index: usize) -> Result<String>;

    /// Task content (input, output): unescaped as it was given (see `content.rs`).
    fn content(&self, col: &str) -> Result<Value> {
        self.json_value(col).map(crate::content::unescape_value)
    }

    fn opt_content(&self, col: &str) -> Result<Option<Value>> {
        Ok(self
            .opt_json_value(col)?
            .map(crate::content::unescape_value))
    }

    /// A task error, unescaped as it was given.
    fn opt_error(&self, col: &str) -> Result<Option<TaskError>> {
        self.opt_content(col)?
            .map(|v| serde_json::from_value(v).map_err(|e| corrupt(col, e)))
            .transpose()
    }

    fn ts(&self, col: &str) -> Result<Timestamp> {
        self.i64(col).map(Timestamp::from_millis)
    }

    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>> {
        Ok(self.opt_i64(col)?.map(Timestamp::from_millis))
    }

    fn u32(&self, col: &str) -> Result<u32> {
        let v = self.i64(col)?;
        u32::try_from(v).map_err(|e| corrupt(col, e))
    }

    fn parsed<T: std::str::FromStr>(&self, col: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.string(col)?;
        s.parse().map_err(|e| corrupt(col, e))
    }
}

/// One column of a row, by name or position, decoded as `T`.
fn get<'r, R, T, I>(row: &'r R, index: I) -> Result<T>
where
    R: sqlx::Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    I: sqlx::ColumnIndex<R> + std::fmt::Display + Copy,
{
    row.try_get(index)
        .map_err(|e| corrupt(&index.to_string(), e))
}

macro_rules! impl_col {
    ($row:ty) => {
        impl Col for $row {
            fn uuid(&self, col: &str) -> Result<Uuid> {
                get(self, col)
            }
            fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
                get(self, col)
            }
            fn i64(&self, col: &str) -> Result<i64> {
                get(self, col)
            }
            fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
                get(self, col)
            }
            fn string(&self, col: &str) -> Result<String> {
                get(self, col)
            }
            fn opt_string(&self, col: &str) -> Result<Option<String>> {
                get(self, col)
            }
            fn boolean(&self, col: &str) -> Result<bool> {
                get(self, col)
            }
            fn json_value(&self, col: &str) -> Result<Value> {
                get::<_, Json<Value>, _>(self, col).map(|j| j.0)
            }
            fn opt_json_value(&self, col: &str) -> Result<Option<Value>> {
                get::<_, Option<Json<Value>>, _>(self, col).map(|j| j.map(|j| j.0))
            }
            fn f64(&self, col: &str) -> Result<f64> {
                get(self, col)
            }
            fn opt_f64(&self, col: &str) -> Result<Option<f64>> {
                get(self, col)
            }
            fn uuid_at(&self, index: usize) -> Result<Uuid> {
                get(self, index)
            }
            fn i64_at(&self, index: usize) -> Result<i64> {
                get(self, index)
            }
            fn opt_i64_at(&self, index: usize) -> Result<Option<i64>> {
                get(self, index)
            }
            fn string_at(&self, index: usize) -> Result<String> {
                get(self, index)
            }
        }
    };
}

impl_col!(sqlx::sqlite::SqliteRow);
impl_col!(sqlx::postgres::PgRow);

/// A task row with its recorded attempts. The row itself describes its latest attempt
/// while it runs and once it succeeded (neither has a `task_attempts` row).
pub(crate) fn task<R: Col>(r: &R, attempts: Vec<Attempt>) -> Result<Task> {
    let status: TaskStatus = r.parsed("status")?;
    let mut attempts = attempts;
    let attempt = r.u32("attempt")?;
    let latest = match status {
        TaskStatus::Running => Some((AttemptStatus::Running, None)),
        TaskStatus::Succeeded => Some((AttemptStatus::Succeeded, r.opt_ts("finished_at")?)),
        _ => None,
    };
    if let Some((attempt_status, finished_at)) = latest
        && attempt > 0
        && attempts.last().is_none_or(|a| a.number < attempt)
    {
        attempts.push(Attempt {
            number: attempt,
            status: attempt_status,
            worker_id: r.opt_uuid("worker_id")?.map(Into::into),
            worker: r.opt_string("worker_name")?,
            started_at: r.opt_ts("started_at")?.unwrap_or_default(),
            finished_at,
            error: None,
        });
    }
    Ok(Task {
        id: TaskId(r.uuid("id")?),
        agent: r.string("agent")?,
        status,
        priority: i32::try_from(r.i64("priority")?).map_err(|e| corrupt("priority", e))?,
        input: r.content("input")?,
        output: r.opt_content("output")?,
        error: r.opt_error("error")?,
        cached: r.boolean("cached")?,
        owner_id: r.opt_uuid("owner_id")?.map(Into::into),
        idempotency_key: r.opt_string("idempotency_key")?,
        run_at: r.ts("run_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        started_at: r.opt_ts("started_at")?,
        finished_at: r.opt_ts("finished_at")?,
        attempts,
        parent_id: r.opt_uuid("parent_id")?.map(Into::into),
        fallback_of: r.opt_uuid("fallback_of")?.map(Into::into),
        fallback_task_id: r.opt_uuid("fallback_task_id")?.map(Into::into),
        trace_id: r.opt_string("trace_id")?,
        cancel_requested: r.opt_i64("cancel_requested_at")?.is_some(),
        seq: r.i64("seq")? as u64,
        wait: match r.opt_json_value("wait")? {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v).map_err(|e| corrupt("wait", e))?),
        },
        concurrency_key: r.opt_string("flow_key")?,
        schedule: r.opt_string("schedule")?,
        scheduled_for: r.opt_ts("scheduled_for")?,
    })
}

pub(crate) fn attempt<R: Col>(r: &R) -> Result<(TaskId, Attempt)> {
    Ok((
        TaskId(r.uuid("task_id")?),
        Attempt {
            number: r.u32("attempt")?,
            status: r.parsed::<AttemptStatus>("status")?,
            worker_id: r.opt_uuid("worker_id")?.map(Into::into),
            worker: r.opt_string("worker_name")?,
            started_at: r.ts("started_at")?,
            finished_at: r.opt_ts("finished_at")?,
            error: r.opt_error("error")?,
        },
    ))
}

pub(crate) fn claimed<R: Col>(r: &R) -> Result<ClaimedTask> {
    Ok(ClaimedTask {
        id: TaskId(r.uuid("id")?),
        agent: r.string("agent")?,
        input: r.content("input")?,
        priority: i32::try_from(r.i64("priority")?).map_err(|e| corrupt("priority", e))?,
        attempt: r.u32("attempt")?,
        attempts_in_run: r.u32("attempts_in_run")?,
        seq: r.i64("seq")? as u64,
        owner_id: r.opt_uuid("owner_id")?.map(Into::into),
        parent_id: r.opt_uuid("parent_id")?.map(Into::into),
        trace_id: r.opt_string("trace_id")?,
        created_at: r.ts("created_at")?,
        run_at: r.ts("run_at")?,
        claimed_at: r.ts("started_at")?,
        fair_key: r.string("fair_key")?,
    })
}

/// A running attempt as the store finds it (no claim timings).
pub(crate) fn lease<R: Col>(r: &R) -> Result<AttemptRef> {
    Ok(AttemptRef {
        task_id: TaskId(r.uuid("id")?),
        agent: r.string("agent")?,
        attempt: r.u32("attempt")?,
        attempts_in_run: r.u32("attempts_in_run")?,
        worker_id: r.opt_uuid("worker_id")?.map(Into::into),
        owner_id: r.opt_uuid("owner_id")?.map(Into::into),
        input: r.content("input")?,
        parent_id: r.opt_uuid("parent_id")?.map(Into::into),
        trace_id: r.opt_string("trace_id")?,
        created_at: None,
        claimed_at: None,
    })
}

/// A transition row (`RETURNING id, agent, owner_id, status, seq, attempt, run_at, updated_at`).
pub(crate) fn transition<R: Col>(r: &R) -> Result<Transition> {
    Ok(Transition {
        task_id: TaskId(r.uuid("id")?),
        agent: r.string("agent")?,
        owner_id: r.opt_uuid("owner_id")?.map(Into::into),
        status: r.parsed("status")?,
        seq: r.i64("seq")? as u64,
        attempt: r.u32("attempt")?,
        at: r.ts("updated_at")?,
        run_at: r.ts("run_at")?,
        output: None,
        error: None,
        fallback_task_id: None,
        cached: false,
    })
}

pub(crate) fn agent<R: Col>(r: &R) -> Result<Agent> {
    let spec: AgentSpec =
        serde_json::from_str(&r.string("spec")?).map_err(|e| corrupt("spec", e))?;
    Ok(Agent {
        spec,
        builtin: r.boolean("builtin")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) fn user<R: Col>(r: &R) -> Result<(User, String)> {
    Ok((
        User {
            id: r.uuid("id")?.into(),
            email: r.string("email")?,
            role: r.parsed("role")?,
            disabled: r.boolean("disabled")?,
            created_at: r.ts("created_at")?,
            updated_at: r.ts("updated_at")?,
        },
        r.string("password_hash")?,
    ))
}

pub(crate) fn api_key<R: Col>(r: &R) -> Result<ApiKey> {
    let scopes: Vec<Scope> =
        serde_json::from_str(&r.string("scopes")?).map_err(|e| corrupt("scopes", e))?;
    Ok(ApiKey {
        id: r.uuid("id")?.into(),
        user_id: r.uuid("user_id")?.into(),
        name: r.string("name")?,
        prefix: r.string("prefix")?,
        scopes,
        created_at: r.ts("created_at")?,
        expires_at: r.opt_ts("expires_at")?,
        revoked_at: r.opt_ts("revoked_at")?,
        last_used_at: r.opt_ts("last_used_at")?,
    })
}

pub(crate) fn worker<R: Col>(r: &R) -> Result<WorkerInfo> {
    let agents: Vec<String> =
        serde_json::from_str(&r.string("agents")?).map_err(|e| corrupt("agents", e))?;
    Ok(WorkerInfo {
        id: r.uuid("id")?.into(),
        name: r.string("name")?,
        kind: r.string("kind")?,
        agents,
        slots: r.u32("slots")?,
        slots_in_use: r.u32("slots_in_use")?,
        version: r.string("version")?,
        host: r.opt_string("host")?,
        started_at: r.ts("started_at")?,
        heartbeat_at: r.ts("heartbeat_at")?,
    })
}

pub(crate) fn session<R: Col>(r: &R) -> Result<Session> {
    let used_hashes: Vec<String> =
        serde_json::from_str(&r.string("used_hashes")?).map_err(|e| corrupt("used_hashes", e))?;
    Ok(Session {
        id: r.uuid("id")?.into(),
        user_id: r.uuid("user_id")?.into(),
        created_at: r.ts("created_at")?,
        expires_at: r.ts("expires_at")?,
        last_refreshed_at: r.ts("last_refreshed_at")?,
        user_agent: r.opt_string("user_agent")?,
        ip: r.opt_string("ip")?,
        refresh_hash: r.string("refresh_hash")?,
        used_hashes,
        sealed_next: r.string("sealed_next")?,
    })
}

/// A `reserve_numbers` row: the last number of the block reserved for a running
/// attempt, its agent and owner.
pub struct ReservedNumbers {
    pub task_id: TaskId,
    pub attempt: u32,
    pub last: u64,
    pub agent: String,
    pub owner_id: Option<UserId>,
}

pub(crate) fn reserved_numbers<R: Col>(r: &R) -> Result<ReservedNumbers> {
    Ok(ReservedNumbers {
        task_id: TaskId(r.uuid("id")?),
        attempt: r.u32("attempt")?,
        last: r.i64("numbered")? as u64,
        agent: r.string("agent")?,
        owner_id: r.opt_uuid("owner_id")?.map(UserId),
    })
}

/// A `count_events` row: a task and how many stream events it has had.
pub(crate) fn stream_count<R: Col>(r: &R) -> Result<(TaskId, u64)> {
    Ok((TaskId(r.uuid("id")?), r.i64("streamed")? as u64))
}

/// A `task_stream` row: `(n, event, stream_cut)`.
pub(crate) fn stream_event<R: Col>(r: &R) -> Result<(u64, StreamEvent, u64)> {
    let body = serde_json::from_value(r.content("body")?).map_err(|e| corrupt("body", e))?;
    Ok((
        r.i64("n")? as u64,
        StreamEvent {
            seq: r.i64("seq")? as u64,
            attempt: r.u32("attempt")?,
            at: r.ts("at")?,
            body,
        },
        r.i64("stream_cut")? as u64,
    ))
}

/// A `task_logs` row.
pub(crate) fn log_line<R: Col>(r: &R) -> Result<TaskLogLine> {
    Ok(TaskLogLine {
        task_id: TaskId(r.uuid("task_id")?),
        seq: r.i64("seq")? as u64,
        attempt: r.u32("attempt")?,
        at: r.ts("at")?,
        level: r.parsed("level")?,
        message: crate::content::unescape_str(&r.string("message")?).into_owned(),
    })
}

/// Groups attempt rows (ordered by task, attempt) by task.
pub(crate) fn group_attempts(
    rows: Vec<(TaskId, Attempt)>,
) -> std::collections::HashMap<TaskId, Vec<Attempt>> {
    let mut map: std::collections::HashMap<TaskId, Vec<Attempt>> = std::collections::HashMap::new();
    for (id, a) in rows {
        map.entry(id).or_default().push(a);
    }
    map
}
