//! `TaskStore`: a task's life from submission to its last event.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::json;
use switchyard_core::event::EventBody;
use switchyard_core::store::*;
use switchyard_core::task::{Task, TaskError};
use switchyard_core::{Error, Result, TaskId, Timestamp, UserId, WorkerId};

use super::SqlStore;
use crate::batch;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, Col, db_err};
use crate::sql::sql;

#[async_trait]
impl<D: Dialect> TaskStore for SqlStore<D> {
    async fn insert_tasks_then_sync(
        &self,
        batch: &[NewTask],
        idempotency_since: Timestamp,
    ) -> Result<(Vec<Submitted>, Synced)> {
        if batch.is_empty() {
            return Ok((Vec::new(), already_synced()));
        }
        if batch.iter().all(|t| t.idempotency_key.is_none()) {
            // The common case: fresh ids, nothing to match; the whole transaction in one
            // round trip, made durable while the caller goes on.
            let synced = self.dialect.insert_batch_atomic(batch).await?;
            let out = batch
                .iter()
                .map(|t| Submitted::Created(batch::inserted_task(t)))
                .collect();
            return Ok((out, synced));
        }
        let mut tx = self.begin_write(true).await?;
        for t in batch.iter().filter(|t| t.idempotency_key.is_some()) {
            self.count(1);
            Query::new(D::SQL.clear_stale_idempotency)
                .bind(t.owner_id.map(|u| u.0))
                .bind(t.idempotency_key.as_deref())
                .bind(idempotency_since.millis())
                .execute(tx.on())
                .await
                .map_err(db_err("clear stale idempotency keys"))?;
        }
        let inserted = self.dialect.insert_batch(tx.conn(), batch).await?;
        let mut out = Vec::with_capacity(batch.len());
        for t in batch {
            if inserted.contains(&t.id.0) {
                out.push(Submitted::Created(batch::inserted_task(t)));
                continue;
            }
            let key = t.idempotency_key.as_deref().ok_or_else(|| {
                Error::internal_msg(format!(
                    "task {} was not inserted and has no idempotency key",
                    t.id
                ))
            })?;
            self.count(1);
            let existing = Query::new(D::SQL.find_by_idempotency)
                .bind(t.owner_id.map(|u| u.0))
                .bind(key)
                .fetch_one(tx.on())
                .await
                .map_err(db_err("find idempotent task"))?
                .uuid_at(0)?;
            let task = Self::read_task(tx.conn(), TaskId(existing))
                .await?
                .ok_or_else(|| {
                    Error::internal_msg(format!("idempotent task {existing} vanished"))
                })?;
            out.push(Submitted::Existing(task));
        }
        tx.commit().await.map_err(db_err("commit insert"))?;
        Ok((out, already_synced()))
    }

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>> {
        let mut conn = self
            .dialect
            .fresh_reader()
            .acquire()
            .await
            .map_err(db_err("acquire"))?;
        Self::read_task(&mut conn, id).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        let rows = self.list_rows(query).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<TaskId> = rows
            .iter()
            .map(|r| r.uuid("id").map(TaskId))
            .collect::<Result<_>>()?;
        let mut attempts = rows::group_attempts(self.dialect.attempts_for(&ids).await?);
        rows.iter()
            .zip(ids)
            .map(|(r, id)| rows::task(r, attempts.remove(&id).unwrap_or_default()))
            .collect()
    }

    async fn claim_tasks(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
        let demands: Vec<&AgentDemand> = request.demands.iter().filter(|d| d.max > 0).collect();
        let mut claimed = Vec::new();
        if demands.iter().all(|d| d.concurrency.is_none()) {
            // No running count to respect: each agent's claim is one statement.
            for demand in demands {
                let max = i64::from(demand.max);
                let tasks = self
                    .dialect
                    .claim_agent_atomic(request, &demand.agent, max)
                    .await?;
                claimed.extend(tasks);
            }
        } else {
            let mut tx = self.begin_task_path().await?;
            for demand in demands {
                let mut limit = i64::from(demand.max);
                if let Some(concurrency) = demand.concurrency {
                    self.dialect.lock_agent(tx.conn(), &demand.agent).await?;
                    self.count(1);
                    let running = Query::new(sql!("common", "count_running"))
                        .bind(&demand.agent)
                        .fetch_one(tx.on())
                        .await
                        .map_err(db_err("count running"))?
                        .i64_at(0)?;
                    limit = limit.min(i64::from(concurrency) - running);
                }
                if limit > 0 {
                    let tasks = self
                        .dialect
                        .claim_agent(tx.conn(), request, &demand.agent, limit)
                        .await?;
                    claimed.extend(tasks);
                }
            }
            tx.commit().await.map_err(db_err("commit claim"))?;
        }
        claimed.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn complete_tasks(&self, batch: &[Completion]) -> Result<CompletionResult> {
        let batch = batch::dedupe_completions(batch);
        if batch.is_empty() {
            return Ok(CompletionResult::default());
        }
        let fallbacks_in_batch = batch
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fallback { .. }));
        let by_id: HashMap<TaskId, &Completion> = batch.iter().map(|c| (c.task_id, *c)).collect();
        let mut transitions = Vec::with_capacity(batch.len());
        if !fallbacks_in_batch {
            // The common case: the whole transaction in one round trip.
            for t in self.dialect.complete_batch_atomic(&batch).await? {
                if let Some(c) = by_id.get(&t.task_id) {
                    transitions.push(batch::enrich(t, c));
                }
            }
        } else {
            let mut tx = self.begin_task_path().await?;
            let done = self.dialect.complete_batch(tx.conn(), &batch).await?;
            let mut fallbacks = Vec::new();
            for t in done {
                let Some(c) = by_id.get(&t.task_id) else {
                    continue;
                };
                if let Outcome::Fallback { fallback, .. } = &c.outcome {
                    fallbacks.push((**fallback).clone());
                }
                transitions.push(batch::enrich(t, c));
            }
            if !fallbacks.is_empty() {
                self.dialect.insert_batch(tx.conn(), &fallbacks).await?;
                transitions.extend(
                    fallbacks
                        .iter()
                        .map(|f| Transition::inserted(&batch::inserted_task(f))),
                );
            }
            tx.commit().await.map_err(db_err("commit complete"))?;
        }
        let recorded: HashSet<TaskId> = transitions.iter().map(|t| t.task_id).collect();
        let rejected = batch
            .iter()
            .map(|c| c.task_id)
            .filter(|id| !recorded.contains(id))
            .collect();
        Ok(CompletionResult {
            transitions,
            rejected,
        })
    }

    async fn record_events(&self, drafts: Vec<EventDraft>) -> Result<Vec<RecordedEvent>> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let (request, groups) = batch::seq_requests(&drafts);
        let mut tx = self.begin_task_path().await?;
        let reserved = self.dialect.reserve_seqs(tx.conn(), request).await?;
        let wanted: HashMap<(TaskId, u32), u64> =
            groups.iter().map(|(id, a, n)| ((*id, *a), *n)).collect();
        // Per running attempt: the next seq to hand out, and who to attribute events to.
        let mut next: HashMap<(TaskId, u32), (u64, String, Option<UserId>)> = HashMap::new();
        for (id, attempt, last_seq, agent, owner) in reserved {
            let n = wanted.get(&(id, attempt)).copied().unwrap_or(0);
            next.insert((id, attempt), (last_seq + 1 - n, agent, owner));
        }
        let mut out = Vec::with_capacity(drafts.len());
        let mut logs = Vec::new();
        for d in drafts {
            let recorded = match next.get_mut(&(d.task_id, d.attempt)) {
                Some((seq, agent, owner)) => {
                    let this = *seq;
                    *seq += 1;
                    if let EventBody::Log { level, message } = &d.body {
                        logs.push(json!({
                            "id": batch::hex_id(&d.task_id.0), "seq": this, "attempt": d.attempt,
                            "at": d.at.millis(), "level": level.as_str(),
                            "message": crate::content::escape_str(message),
                        }));
                    }
                    RecordedEvent {
                        seq: Some(this),
                        agent: agent.clone(),
                        owner_id: *owner,
                        draft: d,
                    }
                }
                None => RecordedEvent {
                    seq: None,
                    agent: String::new(),
                    owner_id: None,
                    draft: d,
                },
            };
            out.push(recorded);
        }
        if !logs.is_empty() {
            let logs = serde_json::Value::Array(logs).to_string();
            self.dialect.insert_logs(tx.conn(), logs).await?;
        }
        tx.commit().await.map_err(db_err("commit events"))?;
        Ok(out)
    }

    async fn task_logs(&self, id: TaskId, after_seq: u64, limit: u32) -> Result<Vec<TaskLogLine>> {
        let rows = Query::new(sql!("common", "task_logs"))
            .bind(id.0)
            .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await
            .map_err(db_err("task logs"))?;
        rows.iter().map(rows::log_line).collect()
    }

    async fn extend_leases(&self, worker_id: WorkerId, until: Timestamp) -> Result<u64> {
        Query::new(D::SQL.extend_leases)
            .bind(worker_id.0)
            .bind(until.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("extend leases"))
    }

    async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<AttemptRef>> {
        let rows = Query::new(sql!("common", "expired_leases"))
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("expired leases"))?;
        rows.iter().map(rows::lease).collect()
    }

    async fn running_tasks(
        &self,
        worker_id: Option<WorkerId>,
        limit: u32,
    ) -> Result<Vec<AttemptRef>> {
        let rows = Query::new(sql!("common", "running_tasks"))
            .bind(worker_id.map(|w| w.0))
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("running tasks"))?;
        rows.iter().map(rows::lease).collect()
    }

    async fn overdue_cancellations(
        &self,
        requested_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRef>> {
        let rows = Query::new(sql!("common", "overdue_cancellations"))
            .bind(requested_before.millis())
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("overdue cancellations"))?;
        rows.iter().map(rows::lease).collect()
    }

    async fn cancel_task(&self, id: TaskId, now: Timestamp) -> Result<CancelOutcome> {
        let mut tx = self.begin_write(true).await?;
        let error = TaskError::permanent(
            switchyard_core::task::codes::CANCELLED,
            "cancelled before it ran",
        );
        let stored_error = serde_json::to_value(crate::content::escape_error(&error))
            .map_err(|e| Error::internal("encode task error", e))?;
        let row = Query::new(sql!("common", "cancel_waiting"))
            .bind(id.0)
            .bind(now.millis())
            .bind(stored_error)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("cancel waiting task"))?;
        let outcome = if let Some(row) = row {
            let mut t = rows::transition(&row)?;
            t.error = Some(error);
            CancelOutcome::Cancelled(Box::new(t))
        } else if let Some(row) = Query::new(sql!("common", "request_cancel"))
            .bind(id.0)
            .bind(now.millis())
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("request cancel"))?
        {
            CancelOutcome::Requested {
                worker_id: row.opt_uuid("worker_id")?.map(WorkerId),
                attempt: row.u32("attempt")?,
            }
        } else {
            match self.task_status(&mut tx, id).await? {
                Some(s) => CancelOutcome::AlreadyFinished(
                    s.parse().map_err(|e: String| Error::internal_msg(e))?,
                ),
                None => CancelOutcome::NotFound,
            }
        };
        tx.commit().await.map_err(db_err("commit cancel"))?;
        Ok(outcome)
    }

    async fn replay_task(&self, id: TaskId, now: Timestamp) -> Result<Option<Transition>> {
        let mut tx = self.begin_write(true).await?;
        let row = Query::new(sql!("common", "replay_task"))
            .bind(id.0)
            .bind(now.millis())
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("replay task"))?;
        let result = match row {
            Some(row) => Some(rows::transition(&row)?),
            None => match self.task_status(&mut tx, id).await? {
                None => None,
                Some(s) => {
                    return Err(Error::invalid_state(format!(
                        "task {id} is {s}; only dead, failed or cancelled tasks can be retried"
                    )));
                }
            },
        };
        tx.commit().await.map_err(db_err("commit replay"))?;
        Ok(result)
    }

    async fn queue_stats(&self, now: Timestamp) -> Result<Vec<AgentQueueStats>> {
        let rows = Query::new(sql!("common", "queue_stats"))
            .bind(now.millis())
            .fetch_all(self.reader())
            .await
            .map_err(db_err("queue stats"))?;
        rows.iter()
            .map(|r| {
                Ok(AgentQueueStats {
                    agent: r.string("agent")?,
                    ready: r.opt_i64("ready")?.unwrap_or(0) as u64,
                    scheduled: r.opt_i64("scheduled")?.unwrap_or(0) as u64,
                    running: r.opt_i64("running")?.unwrap_or(0) as u64,
                    oldest_ready_at: r.opt_ts("oldest_ready_at")?,
                })
            })
            .collect()
    }

    async fn ready_agents(&self, now: Timestamp) -> Result<Vec<String>> {
        let rows = Query::new(sql!("common", "ready_agents"))
            .bind(now.millis())
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("ready agents"))?;
        rows.iter().map(|r| r.string_at(0)).collect()
    }

    async fn next_run_at(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        let next = Query::new(sql!("common", "next_run_at"))
            .bind(now.millis())
            .fetch_one(self.fresh_reader())
            .await
            .map_err(db_err("next run_at"))?
            .opt_i64_at(0)?;
        Ok(next.map(Timestamp::from_millis))
    }

    async fn expire_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        Query::new(sql!("common", "expire_idempotency"))
            .bind(before.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("expire idempotency keys"))
    }
}

impl<D: Dialect> SqlStore<D> {
    /// A task's status in `tx`, if the task exists.
    async fn task_status(&self, tx: &mut super::Tx<D>, id: TaskId) -> Result<Option<String>> {
        Query::new(sql!("common", "task_status"))
            .bind(id.0)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("task status"))?
            .map(|r| r.string_at(0))
            .transpose()
    }
}
