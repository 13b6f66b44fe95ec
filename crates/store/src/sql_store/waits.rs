//! `WaitStore`: durable waits (sleeps, signals, joins of child tasks) and signals.
//!
//! Every change is one transaction that first locks the task's row (`lock_task`): a
//! signal and the wait it ends, or a wait and the signal that arrives meanwhile, are
//! serialised, so neither can miss the other.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_core::step::{Step, StepStatus};
use switchyard_core::store::WaitStore;
use switchyard_core::task::{TaskError, TaskStatus};
use switchyard_core::wait::{
    MAX_PENDING_SIGNALS, ResumeReason, Resumed, SignalSent, Wait, WaitBegun, WaitKind,
    child_result, codes,
};
use switchyard_core::{Error, ErrorCode, Result, TaskId, Timestamp};
use uuid::Uuid;

use super::steps::{read_step, write_step};
use super::{SqlStore, Tx};
use crate::dialect::{Dialect, On};
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

/// How many due waits one transaction resumes.
const RESUME_PAGE: u32 = 500;

/// The locked row of a task.
struct Locked {
    status: TaskStatus,
    attempt: u32,
    wait: Option<Wait>,
    cancel_requested: bool,
}

#[async_trait]
impl<D: Dialect> WaitStore for SqlStore<D> {
    async fn begin_wait(
        &self,
        task: TaskId,
        attempt: u32,
        wait: &Wait,
        now: Timestamp,
        max_steps: u32,
    ) -> Result<WaitBegun> {
        let mut tx = self.begin_flushed().await?;
        let (begun, wrote) = begin_wait_in(&mut tx, task, attempt, wait, now, max_steps).await?;
        if wrote {
            self.commit_flushed(tx, "commit wait").await?;
        } else {
            // Ended now, not when the connection is next used: the row lock goes with it.
            tx.rollback().await.map_err(db_err("end wait check"))?;
        }
        Ok(begun)
    }

    async fn resume_due(&self, now: Timestamp, limit: u32) -> Result<Vec<Resumed>> {
        let mut tx = self.begin_flushed().await?;
        let rows = Query::new(D::SQL.due_waits)
            .bind(now.millis())
            .bind(i64::from(limit.clamp(1, RESUME_PAGE)))
            .fetch_all(tx.on())
            .await
            .map_err(db_err("read due waits"))?;
        let mut resumed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = TaskId(row.uuid("id")?);
            let Some(wait) = parse_wait(row.opt_json_value("wait")?)? else {
                continue;
            };
            let (reason, step) = match wait.kind {
                WaitKind::Signal => (ResumeReason::Timeout, timed_out_step(&wait, now)),
                WaitKind::Sleep | WaitKind::Children => (
                    ResumeReason::Time,
                    succeeded_step(&wait.name, 0, Value::Null, now),
                ),
            };
            resumed.extend(resume(&mut tx, id, reason, step, now).await?);
        }
        self.commit_flushed(tx, "commit resumed waits").await?;
        Ok(resumed)
    }

    async fn resume_joined(
        &self,
        parents: Option<&[TaskId]>,
        now: Timestamp,
    ) -> Result<Vec<Resumed>> {
        // Joins that look over, read without a lock (most nudges find children still
        // running); each is then checked again and resumed under its row's lock.
        let mut over = Vec::new();
        match parents {
            Some(parents) => {
                for &parent in parents {
                    let row = Query::new(sql!("common", "task_wait"))
                        .bind(parent.0)
                        .fetch_optional(self.fresh_reader())
                        .await
                        .map_err(db_err("read a join"))?;
                    if let Some(row) = row
                        && row.parsed::<TaskStatus>("status")? == TaskStatus::Waiting
                        && let Some(wait) = parse_wait(row.opt_json_value("wait")?)?
                        && wait.kind == WaitKind::Children
                        && self.join_looks_over(parent, &wait).await?
                    {
                        over.push(parent);
                    }
                }
            }
            None => {
                let mut after = Uuid::nil();
                loop {
                    let rows = Query::new(sql!("common", "joining_tasks"))
                        .bind(after)
                        .bind(i64::from(RESUME_PAGE))
                        .fetch_all(self.fresh_reader())
                        .await
                        .map_err(db_err("read joins"))?;
                    for row in &rows {
                        let id = TaskId(row.uuid("id")?);
                        after = id.0;
                        if let Some(wait) = parse_wait(row.opt_json_value("wait")?)?
                            && self.join_looks_over(id, &wait).await?
                        {
                            over.push(id);
                        }
                    }
                    if rows.len() < RESUME_PAGE as usize {
                        break;
                    }
                }
            }
        }
        let mut resumed = Vec::new();
        for parent in over {
            let mut tx = self.begin_flushed().await?;
            let Some(locked) = lock_task(&mut tx, parent).await? else {
                continue;
            };
            if let (TaskStatus::Waiting, Some(wait)) = (locked.status, locked.wait)
                && wait.kind == WaitKind::Children
            {
                resumed.extend(join_over(&mut tx, parent, &wait, now).await?);
            }
            self.commit_flushed(tx, "commit joins").await?;
        }
        Ok(resumed)
    }

    async fn next_wait_deadline(&self) -> Result<Option<Timestamp>> {
        let row = Query::new(sql!("common", "next_wait_deadline"))
            .bind(Timestamp::MAX.millis())
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("next wait deadline"))?;
        Ok(match row {
            Some(r) => r.opt_i64_at(0)?.map(Timestamp::from_millis),
            None => None,
        })
    }

    async fn send_signal(
        &self,
        task: TaskId,
        name: &str,
        payload: &Value,
        now: Timestamp,
    ) -> Result<Option<SignalSent>> {
        let mut tx = self.begin_flushed().await?;
        let Some(locked) = lock_task(&mut tx, task).await? else {
            return Ok(None);
        };
        if locked.status.is_terminal() {
            return Err(Error::new(
                ErrorCode::TaskFinished,
                format!(
                    "task {task} has finished ({}); it takes no more signals",
                    locked.status
                ),
            ));
        }
        if locked.status == TaskStatus::Waiting
            && let Some(wait) = &locked.wait
            && wait.kind == WaitKind::Signal
            && wait.signal.as_deref() == Some(name)
        {
            let step = succeeded_step(&wait.name, 0, payload.clone(), now);
            // Three events: `signal_received`, the wait's `step_finished`, `resumed`.
            let resumed = resume_numbered(&mut tx, task, ResumeReason::Signal, step, now, 3)
                .await?
                .ok_or_else(|| Error::internal_msg("a locked waiting task did not resume"))?;
            self.commit_flushed(tx, "commit signal").await?;
            return Ok(Some(SignalSent::Resumed {
                signal_seq: resumed.seq - 2,
                resumed: Box::new(resumed),
            }));
        }
        let kept = Query::new(sql!("common", "count_signals"))
            .bind(task.0)
            .fetch_one(tx.on())
            .await
            .map_err(db_err("count signals"))?
            .i64("n")?;
        if kept >= i64::from(MAX_PENDING_SIGNALS) {
            return Err(Error::invalid_state(format!(
                "task {task} holds {MAX_PENDING_SIGNALS} signals it has not waited for, the most kept"
            )));
        }
        let seq = Query::new(sql!("common", "bump_seq"))
            .bind(task.0)
            .fetch_one(tx.on())
            .await
            .map_err(db_err("number signal"))?
            .i64("seq")?;
        Query::new(sql!("common", "insert_signal"))
            .bind(task.0)
            .bind(seq)
            .bind(name)
            .bind(crate::content::escape_value(payload).into_owned())
            .bind(now.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("keep signal"))?;
        self.commit_flushed(tx, "commit signal").await?;
        Ok(Some(SignalSent::Kept { seq: seq as u64 }))
    }

    async fn get_step(&self, task: TaskId, name: &str) -> Result<Option<Step>> {
        read_step(self.fresh_reader(), task, name).await
    }

    async fn count_children(&self, parent: TaskId) -> Result<u64> {
        let row = Query::new(sql!("common", "count_children"))
            .bind(parent.0)
            .fetch_one(self.fresh_reader())
            .await
            .map_err(db_err("count children"))?;
        Ok(row.i64("n")? as u64)
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Whether every child a join waits for has finished, as a reader sees it now.
    async fn join_looks_over(&self, parent: TaskId, wait: &Wait) -> Result<bool> {
        let state = joined(self.fresh_reader(), parent, &wait.children).await?;
        Ok(matches!(state, Joined::Done(_)))
    }
}

async fn lock_task<D: Dialect>(tx: &mut Tx<D>, id: TaskId) -> Result<Option<Locked>> {
    let Some(row) = Query::new(D::SQL.lock_task)
        .bind(id.0)
        .fetch_optional(tx.on())
        .await
        .map_err(db_err("lock task"))?
    else {
        return Ok(None);
    };
    Ok(Some(Locked {
        status: row.parsed("status")?,
        attempt: row.u32("attempt")?,
        wait: parse_wait(row.opt_json_value("wait")?)?,
        cancel_requested: row.opt_i64("cancel_requested_at")?.is_some(),
    }))
}

fn parse_wait(v: Option<Value>) -> Result<Option<Wait>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Error::internal("read a task's wait", e)),
    }
}

/// The oldest kept signal named `name`, consumed.
async fn take_signal<D: Dialect>(
    tx: &mut Tx<D>,
    task: TaskId,
    name: &str,
) -> Result<Option<Value>> {
    let Some(row) = Query::new(sql!("common", "first_signal"))
        .bind(task.0)
        .bind(name)
        .fetch_optional(tx.on())
        .await
        .map_err(db_err("read signal"))?
    else {
        return Ok(None);
    };
    Query::new(sql!("common", "delete_signal"))
        .bind(task.0)
        .bind(row.i64("id")?)
        .execute(tx.on())
        .await
        .map_err(db_err("consume signal"))?;
    Ok(Some(row.opt_content("payload")?.unwrap_or(Value::Null)))
}

enum Joined {
    /// Every joined child has finished: their results, in the join's order.
    Done(Value),
    Pending,
    NotAChild(TaskId),
}

async fn joined<D: Dialect>(on: On<'_, D>, parent: TaskId, ids: &[TaskId]) -> Result<Joined> {
    let rows = Query::new(sql!("common", "task_children"))
        .bind(parent.0)
        .fetch_all(on)
        .await
        .map_err(db_err("read child tasks"))?;
    let mut children = HashMap::with_capacity(rows.len());
    for r in &rows {
        children.insert(TaskId(r.uuid("id")?), r);
    }
    let mut results = Vec::with_capacity(ids.len());
    let mut pending = false;
    for id in ids {
        let Some(r) = children.get(id) else {
            return Ok(Joined::NotAChild(*id));
        };
        let status: TaskStatus = r.parsed("status")?;
        if !status.is_terminal() {
            pending = true;
            continue;
        }
        if !pending {
            results.push(child_result(
                *id,
                status,
                r.opt_content("output")?,
                r.opt_error("error")?,
            ));
        }
    }
    Ok(if pending {
        Joined::Pending
    } else {
        Joined::Done(Value::Array(results))
    })
}

/// Resumes a waiting join whose children have all finished.
async fn join_over<D: Dialect>(
    tx: &mut Tx<D>,
    parent: TaskId,
    wait: &Wait,
    now: Timestamp,
) -> Result<Option<Resumed>> {
    match joined(tx.on(), parent, &wait.children).await? {
        Joined::Done(results) => {
            let step = succeeded_step(&wait.name, 0, results, now);
            resume(tx, parent, ResumeReason::Children, step, now).await
        }
        Joined::Pending => Ok(None),
        Joined::NotAChild(id) => {
            // Checked when the wait began; a child cannot leave its parent.
            tracing::error!(%parent, child = %id, "a join names a task that is not a child");
            Ok(None)
        }
    }
}

/// Queues a waiting task again, its wait's step recorded: two events, the step's and
/// `resumed`.
async fn resume<D: Dialect>(
    tx: &mut Tx<D>,
    id: TaskId,
    reason: ResumeReason,
    step: Step,
    now: Timestamp,
) -> Result<Option<Resumed>> {
    resume_numbered(tx, id, reason, step, now, 2).await
}

/// [`resume`], numbering `events` events (the last one is `resumed`).
async fn resume_numbered<D: Dialect>(
    tx: &mut Tx<D>,
    id: TaskId,
    reason: ResumeReason,
    mut step: Step,
    now: Timestamp,
    events: i64,
) -> Result<Option<Resumed>> {
    let Some(row) = Query::new(sql!("common", "resume_task"))
        .bind(id.0)
        .bind(now.millis())
        .bind(events)
        .fetch_optional(tx.on())
        .await
        .map_err(db_err("resume task"))?
    else {
        return Ok(None);
    };
    // The step belongs to the attempt that waited: the task's latest.
    let attempt = Query::new(sql!("common", "step_task_state"))
        .bind(id.0)
        .fetch_one(tx.on())
        .await
        .map_err(db_err("read task"))?
        .u32("attempt")?;
    step.attempt = attempt;
    write_step(tx, id, &step).await?;
    Ok(Some(Resumed {
        task_id: id,
        agent: row.string("agent")?,
        owner_id: row.opt_uuid("owner_id")?.map(Into::into),
        reason,
        seq: row.i64("seq")? as u64,
        step,
    }))
}

fn succeeded_step(name: &str, attempt: u32, output: Value, now: Timestamp) -> Step {
    Step {
        name: name.to_owned(),
        status: StepStatus::Succeeded,
        attempt,
        output: Some(output),
        error: None,
        started_at: now,
        finished_at: now,
    }
}

fn timed_out_step(wait: &Wait, now: Timestamp) -> Step {
    let signal = wait.signal.as_deref().unwrap_or_default();
    Step {
        name: wait.name.clone(),
        status: StepStatus::Failed,
        attempt: 0,
        output: None,
        error: Some(TaskError::permanent(
            codes::WAIT_TIMEOUT,
            format!("the signal {signal:?} did not come before the wait's timeout"),
        )),
        started_at: now,
        finished_at: now,
    }
}

/// [`WaitStore::begin_wait`] in `tx`: what it found, and whether it wrote anything.
async fn begin_wait_in<D: Dialect>(
    tx: &mut Tx<D>,
    task: TaskId,
    attempt: u32,
    wait: &Wait,
    now: Timestamp,
    max_steps: u32,
) -> Result<(WaitBegun, bool)> {
    let Some(locked) = lock_task(tx, task).await? else {
        return Ok((WaitBegun::LeaseLost, false));
    };
    if locked.status != TaskStatus::Running || locked.attempt != attempt || locked.cancel_requested
    {
        return Ok((WaitBegun::LeaseLost, false));
    }
    let census = Query::new(sql!("common", "step_census"))
        .bind(task.0)
        .bind(&wait.name)
        .fetch_one(tx.on())
        .await
        .map_err(db_err("count steps"))?;
    if census.opt_string("existing")?.is_some() {
        let step = read_step(tx.on(), task, &wait.name).await?;
        match step {
            Some(step) if step.status == StepStatus::Succeeded => {
                return Ok((
                    WaitBegun::Ready {
                        step,
                        recorded: false,
                    },
                    false,
                ));
            }
            Some(step)
                if step
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == codes::WAIT_TIMEOUT) =>
            {
                return Ok((WaitBegun::TimedOut, false));
            }
            _ => {}
        }
    } else if census.i64("steps")? >= i64::from(max_steps) {
        return Ok((WaitBegun::TooManySteps, false));
    }
    let ready = match wait.kind {
        WaitKind::Sleep => wait.until.is_some_and(|t| t <= now).then_some(Value::Null),
        WaitKind::Signal => {
            let name = wait.signal.as_deref().unwrap_or_default();
            take_signal(tx, task, name).await?
        }
        WaitKind::Children => match joined(tx.on(), task, &wait.children).await? {
            Joined::Done(results) => Some(results),
            Joined::Pending => None,
            Joined::NotAChild(id) => return Ok((WaitBegun::NotAChild(id), false)),
        },
    };
    if let Some(output) = ready {
        let step = succeeded_step(&wait.name, attempt, output, now);
        write_step(tx, task, &step).await?;
        return Ok((
            WaitBegun::Ready {
                step,
                recorded: true,
            },
            true,
        ));
    }
    Query::new(sql!("common", "suspend_attempt"))
        .bind(task.0)
        .bind(now.millis())
        .execute(tx.on())
        .await
        .map_err(db_err("end attempt in a wait"))?;
    let stored = serde_json::to_value(wait).map_err(|e| Error::internal("encode wait", e))?;
    let row = Query::new(sql!("common", "suspend_task"))
        .bind(task.0)
        .bind(stored)
        .bind(wait.kind.as_str())
        .bind(wait.until.unwrap_or(Timestamp::MAX).millis())
        .bind(now.millis())
        .fetch_one(tx.on())
        .await
        .map_err(db_err("suspend task"))?;
    let seq = row.i64("seq")? as u64;
    Ok((WaitBegun::Suspended { seq }, true))
}
