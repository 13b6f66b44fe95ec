//! The parts of the `Store` implementation that are the same on every backend, written
//! once and instantiated per backend by [`impl_store_common!`].
//!
//! A backend provides pools (`writer()` for writes, `fresh_reader()` for reads that must
//! see every committed write, `reader()` for read-heavy queries that may lag) and a handful of dialect-specific batch methods
//! (`insert_batch`, `claim_agent`, `complete_batch`, `reserve_seqs`, `insert_logs`,
//! `attempts_for`, `list_rows`, `lock_agent`), and gets everything else from here.

/// Path of an SQL file: `sql!("common", "get_task")`.
macro_rules! sql {
    ($dialect:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sql/",
            $dialect,
            "/",
            $name,
            ".sql"
        ))
    };
}
pub(crate) use sql;

/// `insert_tasks` where an idempotency key (or a reused id) may match an existing task:
/// those rows are skipped, and the ids actually inserted come back.
macro_rules! insert_or_skip {
    ($dialect:literal) => {
        concat!(
            crate::common::sql!($dialect, "insert_tasks"),
            "ON CONFLICT DO NOTHING\nRETURNING id"
        )
    };
}
pub(crate) use insert_or_skip;

macro_rules! impl_store_common {
    ($store:ty, $dialect:literal) => {
        use std::collections::HashMap;

        use async_trait::async_trait;
        use serde_json::json;
        use sqlx::types::Json;
        use switchyard_core::agent::Agent;
        use switchyard_core::auth::{ApiKey, User};
        use switchyard_core::error::ErrorCode;
        use switchyard_core::event::EventBody;
        use switchyard_core::store::*;
        use switchyard_core::task::{Task, TaskError};
        use switchyard_core::{ApiKeyId, Error, Result, TaskId, Timestamp, UserId, WorkerId};

        use crate::batch;
        use crate::common::sql;
        use crate::rows::{self, db_err, is_unique_violation};

        #[async_trait]
        impl TaskStore for $store {
            async fn insert_tasks_then_sync(
                &self,
                batch: &[NewTask],
                idempotency_since: Timestamp,
            ) -> Result<(Vec<Submitted>, Synced)> {
                if batch.is_empty() {
                    return Ok((Vec::new(), already_synced()));
                }
                if batch.iter().all(|t| t.idempotency_key.is_none()) {
                    // The common case: fresh ids, nothing to match; the whole transaction
                    // in one round trip, made durable while the caller goes on.
                    let synced = self.insert_batch_atomic(batch).await?;
                    let out = batch.iter().map(|t| Submitted::Created(batch::inserted_task(t))).collect();
                    return Ok((out, synced));
                }
                let mut tx = self.begin_write(true).await?;
                for t in batch.iter().filter(|t| t.idempotency_key.is_some()) {
                    self.calls.add(1);
                    sqlx::query(sql!("common", "clear_stale_idempotency"))
                        .bind(t.owner_id.map(|u| u.0))
                        .bind(t.idempotency_key.as_deref())
                        .bind(idempotency_since.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err("clear stale idempotency keys"))?;
                }
                let inserted = self.insert_batch(&mut tx, batch).await?;
                let mut out = Vec::with_capacity(batch.len());
                for t in batch {
                    if inserted.contains(&t.id.0) {
                        out.push(Submitted::Created(batch::inserted_task(t)));
                        continue;
                    }
                    let key = t.idempotency_key.as_deref().ok_or_else(|| {
                        Error::internal_msg(format!("task {} was not inserted and has no idempotency key", t.id))
                    })?;
                    self.calls.add(1);
                    let existing: uuid::Uuid = sqlx::query_scalar(sql!("common", "find_by_idempotency"))
                        .bind(t.owner_id.map(|u| u.0))
                        .bind(key)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err("find idempotent task"))?;
                    let task = Self::read_task(&mut *tx, TaskId(existing)).await?.ok_or_else(|| {
                        Error::internal_msg(format!("idempotent task {existing} vanished"))
                    })?;
                    out.push(Submitted::Existing(task));
                }
                tx.commit().await.map_err(db_err("commit insert"))?;
                Ok((out, already_synced()))
            }

            async fn get_task(&self, id: TaskId) -> Result<Option<Task>> {
                let mut conn = self.fresh_reader().acquire().await.map_err(db_err("acquire"))?;
                Self::read_task(&mut *conn, id).await
            }

            async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
                let rows = self.list_rows(query).await?;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let ids: Vec<TaskId> = rows
                    .iter()
                    .map(|r| rows::Col::uuid(r, "id").map(TaskId))
                    .collect::<Result<_>>()?;
                let mut attempts = rows::group_attempts(self.attempts_for(&ids).await?);
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
                        claimed.extend(self.claim_agent_atomic(request, &demand.agent, i64::from(demand.max)).await?);
                    }
                } else {
                    let mut tx = self.begin_task_path().await?;
                    for demand in demands {
                        let mut limit = i64::from(demand.max);
                        if let Some(concurrency) = demand.concurrency {
                            self.lock_agent(&mut tx, &demand.agent).await?;
                            self.calls.add(1);
                            let running: i64 = sqlx::query_scalar(sql!("common", "count_running"))
                                .bind(&demand.agent)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(db_err("count running"))?;
                            limit = limit.min(i64::from(concurrency) - running);
                        }
                        if limit > 0 {
                            claimed.extend(self.claim_agent(&mut tx, request, &demand.agent, limit).await?);
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
                let fallbacks_in_batch = batch.iter().any(|c| matches!(c.outcome, Outcome::Fallback { .. }));
                let by_id: HashMap<TaskId, &Completion> = batch.iter().map(|c| (c.task_id, *c)).collect();
                let mut transitions = Vec::with_capacity(batch.len());
                if !fallbacks_in_batch {
                    // The common case: the whole transaction in one round trip.
                    for t in self.complete_batch_atomic(&batch).await? {
                        if let Some(c) = by_id.get(&t.task_id) {
                            transitions.push(batch::enrich(t, c));
                        }
                    }
                } else {
                    let mut tx = self.begin_task_path().await?;
                    let done = self.complete_batch(&mut tx, &batch).await?;
                    let mut fallbacks = Vec::new();
                    for t in done {
                        let Some(c) = by_id.get(&t.task_id) else { continue };
                        if let Outcome::Fallback { fallback, .. } = &c.outcome {
                            fallbacks.push((**fallback).clone());
                        }
                        transitions.push(batch::enrich(t, c));
                    }
                    if !fallbacks.is_empty() {
                        self.insert_batch(&mut tx, &fallbacks).await?;
                        transitions.extend(fallbacks.iter().map(|f| Transition::inserted(&batch::inserted_task(f))));
                    }
                    tx.commit().await.map_err(db_err("commit complete"))?;
                }
                let recorded: std::collections::HashSet<TaskId> = transitions.iter().map(|t| t.task_id).collect();
                let rejected = batch.iter().map(|c| c.task_id).filter(|id| !recorded.contains(id)).collect();
                Ok(CompletionResult { transitions, rejected })
            }

            async fn record_events(&self, drafts: Vec<EventDraft>) -> Result<Vec<RecordedEvent>> {
                if drafts.is_empty() {
                    return Ok(Vec::new());
                }
                let (request, groups) = batch::seq_requests(&drafts);
                let mut tx = self.begin_task_path().await?;
                let reserved = self.reserve_seqs(&mut tx, request).await?;
                let wanted: HashMap<(TaskId, u32), u64> = groups.iter().map(|(id, a, n)| ((*id, *a), *n)).collect();
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
                            RecordedEvent { seq: Some(this), agent: agent.clone(), owner_id: *owner, draft: d }
                        }
                        None => RecordedEvent { seq: None, agent: String::new(), owner_id: None, draft: d },
                    };
                    out.push(recorded);
                }
                if !logs.is_empty() {
                    self.insert_logs(&mut tx, serde_json::Value::Array(logs).to_string()).await?;
                }
                tx.commit().await.map_err(db_err("commit events"))?;
                Ok(out)
            }

            async fn task_logs(&self, id: TaskId, after_seq: u64, limit: u32) -> Result<Vec<TaskLogLine>> {
                let rows = sqlx::query(sql!("common", "task_logs"))
                    .bind(id.0)
                    .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err("task logs"))?;
                rows.iter()
                    .map(|r| {
                        use rows::Col;
                        Ok(TaskLogLine {
                            task_id: TaskId(r.uuid("task_id")?),
                            seq: r.i64("seq")? as u64,
                            attempt: r.u32("attempt")?,
                            at: r.ts("at")?,
                            level: r.parsed("level")?,
                            message: crate::content::unescape_str(&r.string("message")?).into_owned(),
                        })
                    })
                    .collect()
            }

            async fn extend_leases(&self, worker_id: WorkerId, until: Timestamp) -> Result<u64> {
                let done = sqlx::query(sql!($dialect, "extend_leases"))
                    .bind(worker_id.0)
                    .bind(until.millis())
                    .execute(self.writer())
                    .await
                    .map_err(db_err("extend leases"))?;
                Ok(done.rows_affected())
            }

            async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<LeaseInfo>> {
                let rows = sqlx::query(sql!("common", "expired_leases"))
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .fetch_all(self.fresh_reader())
                    .await
                    .map_err(db_err("expired leases"))?;
                rows.iter().map(rows::lease).collect()
            }

            async fn running_tasks(&self, worker_id: Option<WorkerId>, limit: u32) -> Result<Vec<LeaseInfo>> {
                let rows = sqlx::query(sql!("common", "running_tasks"))
                    .bind(worker_id.map(|w| w.0))
                    .bind(i64::from(limit))
                    .fetch_all(self.fresh_reader())
                    .await
                    .map_err(db_err("running tasks"))?;
                rows.iter().map(rows::lease).collect()
            }

            async fn overdue_cancellations(&self, requested_before: Timestamp, limit: u32) -> Result<Vec<LeaseInfo>> {
                let rows = sqlx::query(sql!("common", "overdue_cancellations"))
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
                let row = sqlx::query(sql!("common", "cancel_waiting"))
                    .bind(id.0)
                    .bind(now.millis())
                    .bind(Json(crate::content::escape_error(&error)))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("cancel waiting task"))?;
                let outcome = if let Some(row) = row {
                    let mut t = rows::transition(&row)?;
                    t.error = Some(error);
                    CancelOutcome::Cancelled(Box::new(t))
                } else if let Some(row) = sqlx::query(sql!("common", "request_cancel"))
                    .bind(id.0)
                    .bind(now.millis())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("request cancel"))?
                {
                    use rows::Col;
                    CancelOutcome::Requested {
                        worker_id: row.opt_uuid("worker_id")?.map(WorkerId),
                        attempt: row.u32("attempt")?,
                    }
                } else {
                    let status: Option<String> = sqlx::query_scalar(sql!("common", "task_status"))
                        .bind(id.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err("task status"))?;
                    match status {
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
                let row = sqlx::query(sql!("common", "replay_task"))
                    .bind(id.0)
                    .bind(now.millis())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("replay task"))?;
                let result = match row {
                    Some(row) => Some(rows::transition(&row)?),
                    None => {
                        let status: Option<String> = sqlx::query_scalar(sql!("common", "task_status"))
                            .bind(id.0)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err("task status"))?;
                        match status {
                            None => None,
                            Some(s) => {
                                return Err(Error::invalid_state(format!(
                                    "task {id} is {s}; only dead, failed or cancelled tasks can be retried"
                                )));
                            }
                        }
                    }
                };
                tx.commit().await.map_err(db_err("commit replay"))?;
                Ok(result)
            }

            async fn queue_stats(&self, now: Timestamp) -> Result<Vec<AgentQueueStats>> {
                let rows = sqlx::query(sql!("common", "queue_stats"))
                    .bind(now.millis())
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err("queue stats"))?;
                rows.iter()
                    .map(|r| {
                        use rows::Col;
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
                sqlx::query_scalar(sql!("common", "ready_agents"))
                    .bind(now.millis())
                    .fetch_all(self.fresh_reader())
                    .await
                    .map_err(db_err("ready agents"))
            }

            async fn next_run_at(&self, now: Timestamp) -> Result<Option<Timestamp>> {
                let next: Option<i64> = sqlx::query_scalar(sql!("common", "next_run_at"))
                    .bind(now.millis())
                    .fetch_one(self.fresh_reader())
                    .await
                    .map_err(db_err("next run_at"))?;
                Ok(next.map(Timestamp::from_millis))
            }

            async fn expire_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
                let done = sqlx::query(sql!("common", "expire_idempotency"))
                    .bind(before.millis())
                    .execute(self.writer())
                    .await
                    .map_err(db_err("expire idempotency keys"))?;
                Ok(done.rows_affected())
            }
        }

        impl $store {
            async fn list_rows(
                &self,
                q: &TaskQuery,
            ) -> Result<Vec<<crate::common::DbOf<$store> as sqlx::Database>::Row>> {
                let mut qb = sqlx::QueryBuilder::<crate::common::DbOf<$store>>::new(concat!(
                    "SELECT ",
                    crate::common::task_columns!(),
                    " FROM tasks WHERE true"
                ));
                if let Some(owner) = q.owner_id {
                    qb.push(" AND owner_id = ").push_bind(owner.0);
                }
                if let Some(agent) = &q.agent {
                    qb.push(" AND agent = ").push_bind(agent.clone());
                }
                if !q.statuses.is_empty() {
                    qb.push(" AND status IN (");
                    let mut list = qb.separated(", ");
                    for s in &q.statuses {
                        list.push_bind(s.as_str());
                    }
                    list.push_unseparated(")");
                }
                if let Some(after) = q.created_after {
                    qb.push(" AND created_at >= ").push_bind(after.millis());
                }
                if let Some(before) = q.created_before {
                    qb.push(" AND created_at < ").push_bind(before.millis());
                }
                if let Some(parent) = q.parent_id {
                    qb.push(" AND parent_id = ").push_bind(parent.0);
                }
                if let Some(cursor) = q.before_id {
                    qb.push(" AND id < ").push_bind(cursor.0);
                }
                if let Some(text) = &q.text {
                    let Some(query) = crate::monitoring::search_query($dialect, text) else {
                        return Ok(Vec::new());
                    };
                    let (open, close) = crate::monitoring::search_filter($dialect);
                    qb.push(" AND id IN (").push(open).push_bind(query).push(close).push(")");
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit.max(1)));
                qb.build().fetch_all(self.reader()).await.map_err(db_err("list tasks"))
            }

            /// Reads one task with its attempts on the given connection (so a transaction
            /// sees its own writes).
            async fn read_task(
                conn: &mut <crate::common::DbOf<$store> as sqlx::Database>::Connection,
                id: TaskId,
            ) -> Result<Option<Task>> {
                let Some(row) = sqlx::query(sql!("common", "get_task"))
                    .bind(id.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err("get task"))?
                else {
                    return Ok(None);
                };
                let attempts = sqlx::query(sql!("common", "task_attempts"))
                    .bind(id.0)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err("task attempts"))?
                    .iter()
                    .map(|r| rows::attempt(r).map(|(_, a)| a))
                    .collect::<Result<Vec<_>>>()?;
                rows::task(&row, attempts).map(Some)
            }
        }

        #[async_trait]
        impl AgentStore for $store {
            async fn put_agent(&self, agent: &Agent) -> Result<()> {
                let spec = serde_json::to_string(&agent.spec).map_err(|e| Error::internal("encode agent", e))?;
                let mut tx = self.begin_write(true).await?;
                sqlx::query(sql!("common", "put_agent"))
                    .bind(&agent.spec.name)
                    .bind(spec)
                    .bind(agent.builtin)
                    .bind(agent.created_at.millis())
                    .bind(agent.updated_at.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("put agent"))?;
                tx.commit().await.map_err(db_err("commit agent"))?;
                Ok(())
            }

            async fn get_agent(&self, name: &str) -> Result<Option<Agent>> {
                let row = sqlx::query(sql!("common", "get_agent"))
                    .bind(name)
                    .fetch_optional(self.fresh_reader())
                    .await
                    .map_err(db_err("get agent"))?;
                row.as_ref().map(rows::agent).transpose()
            }

            async fn list_agents(&self) -> Result<Vec<Agent>> {
                let rows = sqlx::query(sql!("common", "list_agents"))
                    .fetch_all(self.fresh_reader())
                    .await
                    .map_err(db_err("list agents"))?;
                rows.iter().map(rows::agent).collect()
            }

            async fn delete_agent(&self, name: &str) -> Result<bool> {
                let mut tx = self.begin_write(true).await?;
                let done = sqlx::query(sql!("common", "delete_agent"))
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("delete agent"))?;
                tx.commit().await.map_err(db_err("commit agent"))?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl IdentityStore for $store {
            async fn create_user(&self, user: NewUser) -> Result<User> {
                let mut tx = self.begin_write(true).await?;
                let result = sqlx::query(sql!("common", "create_user"))
                    .bind(user.id.0)
                    .bind(&user.email)
                    .bind(&user.password_hash)
                    .bind(user.role.as_str())
                    .bind(user.created_at.millis())
                    .execute(&mut *tx)
                    .await;
                match result {
                    Ok(_) => {
                        tx.commit().await.map_err(db_err("commit user"))?;
                        Ok(User {
                        id: user.id,
                        email: user.email,
                        role: user.role,
                        disabled: false,
                        created_at: user.created_at,
                        updated_at: user.created_at,
                    })
                    }
                    Err(e) if is_unique_violation(&e) => Err(Error::new(
                        ErrorCode::EmailTaken,
                        format!("a user with email {} already exists", user.email),
                    )),
                    Err(e) => Err(db_err("create user")(e)),
                }
            }

            async fn get_user(&self, id: UserId) -> Result<Option<User>> {
                let row = sqlx::query(sql!("common", "get_user"))
                    .bind(id.0)
                    .fetch_optional(self.fresh_reader())
                    .await
                    .map_err(db_err("get user"))?;
                Ok(row.as_ref().map(rows::user).transpose()?.map(|(u, _)| u))
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
                let row = sqlx::query(sql!("common", "user_by_email"))
                    .bind(email)
                    .fetch_optional(self.fresh_reader())
                    .await
                    .map_err(db_err("user by email"))?;
                row.as_ref().map(rows::user).transpose()
            }

            async fn list_users(&self) -> Result<Vec<User>> {
                let rows = sqlx::query(sql!("common", "list_users"))
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err("list users"))?;
                rows.iter().map(|r| rows::user(r).map(|(u, _)| u)).collect()
            }

            async fn update_user(&self, id: UserId, patch: UserPatch, now: Timestamp) -> Result<Option<User>> {
                let mut tx = self.begin_write(true).await?;
                let row = sqlx::query(sql!("common", "update_user"))
                    .bind(id.0)
                    .bind(patch.role.map(|r| r.as_str()))
                    .bind(patch.disabled)
                    .bind(patch.password_hash)
                    .bind(now.millis())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("update user"))?;
                tx.commit().await.map_err(db_err("commit user"))?;
                Ok(row.as_ref().map(rows::user).transpose()?.map(|(u, _)| u))
            }

            async fn count_users(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(sql!("common", "count_users"))
                    .fetch_one(self.fresh_reader())
                    .await
                    .map_err(db_err("count users"))?;
                Ok(n as u64)
            }

            async fn create_api_key(&self, key: NewApiKey) -> Result<()> {
                let scopes = serde_json::to_string(&key.key.scopes).map_err(|e| Error::internal("encode scopes", e))?;
                let mut tx = self.begin_write(true).await?;
                sqlx::query(sql!("common", "create_api_key"))
                    .bind(key.key.id.0)
                    .bind(key.key.user_id.0)
                    .bind(&key.key.name)
                    .bind(&key.key.prefix)
                    .bind(&key.secret_hash)
                    .bind(scopes)
                    .bind(key.key.created_at.millis())
                    .bind(key.key.expires_at.map(Timestamp::millis))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("create api key"))?;
                tx.commit().await.map_err(db_err("commit"))?;
                Ok(())
            }

            async fn api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>> {
                let row = sqlx::query(sql!("common", "api_key_by_hash"))
                    .bind(secret_hash)
                    .fetch_optional(self.fresh_reader())
                    .await
                    .map_err(db_err("api key by hash"))?;
                row.as_ref().map(rows::api_key).transpose()
            }

            async fn list_api_keys(&self, user: Option<UserId>) -> Result<Vec<ApiKey>> {
                let rows = sqlx::query(sql!("common", "list_api_keys"))
                    .bind(user.map(|u| u.0))
                    .fetch_all(self.fresh_reader())
                    .await
                    .map_err(db_err("list api keys"))?;
                rows.iter().map(rows::api_key).collect()
            }

            async fn revoke_api_key(&self, id: ApiKeyId, user: Option<UserId>, now: Timestamp) -> Result<bool> {
                let mut tx = self.begin_write(true).await?;
                let done = sqlx::query(sql!("common", "revoke_api_key"))
                    .bind(id.0)
                    .bind(user.map(|u| u.0))
                    .bind(now.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("revoke api key"))?;
                tx.commit().await.map_err(db_err("commit"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> Result<()> {
                sqlx::query(sql!("common", "touch_api_key"))
                    .bind(id.0)
                    .bind(now.millis())
                    .execute(self.writer())
                    .await
                    .map_err(db_err("touch api key"))?;
                Ok(())
            }
        }

        #[async_trait]
        impl WorkerStore for $store {
            async fn upsert_worker(&self, w: &WorkerInfo) -> Result<()> {
                let agents = serde_json::to_string(&w.agents).map_err(|e| Error::internal("encode agents", e))?;
                sqlx::query(sql!("common", "upsert_worker"))
                    .bind(w.id.0)
                    .bind(&w.name)
                    .bind(&w.kind)
                    .bind(agents)
                    .bind(i64::from(w.slots))
                    .bind(i64::from(w.slots_in_use))
                    .bind(&w.version)
                    .bind(w.host.as_deref())
                    .bind(w.started_at.millis())
                    .bind(w.heartbeat_at.millis())
                    .execute(self.writer())
                    .await
                    .map_err(db_err("upsert worker"))?;
                Ok(())
            }

            async fn remove_worker(&self, id: WorkerId) -> Result<()> {
                sqlx::query(sql!("common", "remove_worker"))
                    .bind(id.0)
                    .execute(self.writer())
                    .await
                    .map_err(db_err("remove worker"))?;
                Ok(())
            }

            async fn list_workers(&self, alive_since: Timestamp) -> Result<Vec<WorkerInfo>> {
                let rows = sqlx::query(sql!("common", "list_workers"))
                    .bind(alive_since.millis())
                    .fetch_all(self.reader())
                    .await
                    .map_err(db_err("list workers"))?;
                rows.iter().map(rows::worker).collect()
            }

            async fn prune_workers(&self, before: Timestamp) -> Result<u64> {
                let done = sqlx::query(sql!("common", "prune_workers"))
                    .bind(before.millis())
                    .execute(self.writer())
                    .await
                    .map_err(db_err("prune workers"))?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn put_session(&self, s: &switchyard_core::auth::Session) -> Result<()> {
                let used = serde_json::to_string(&s.used_hashes).map_err(|e| Error::internal("encode session", e))?;
                sqlx::query(sql!("common", "put_session"))
                    .bind(s.id.0)
                    .bind(s.user_id.0)
                    .bind(s.created_at.millis())
                    .bind(s.expires_at.millis())
                    .bind(s.last_refreshed_at.millis())
                    .bind(s.user_agent.as_deref())
                    .bind(s.ip.as_deref())
                    .bind(&s.refresh_hash)
                    .bind(used)
                    .bind(&s.sealed_next)
                    .execute(self.writer())
                    .await
                    .map_err(db_err("put session"))?;
                Ok(())
            }

            async fn get_session(&self, id: switchyard_core::SessionId, now: Timestamp) -> Result<Option<switchyard_core::auth::Session>> {
                let row = sqlx::query(sql!("common", "get_session"))
                    .bind(id.0)
                    .bind(now.millis())
                    .fetch_optional(self.fresh_reader())
                    .await
                    .map_err(db_err("get session"))?;
                row.as_ref().map(rows::session).transpose()
            }

            async fn delete_session(&self, id: switchyard_core::SessionId) -> Result<bool> {
                let done = sqlx::query(sql!("common", "delete_session"))
                    .bind(id.0)
                    .execute(self.writer())
                    .await
                    .map_err(db_err("delete session"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_sessions(&self, user: UserId, now: Timestamp) -> Result<Vec<switchyard_core::auth::Session>> {
                let rows = sqlx::query(sql!("common", "list_sessions"))
                    .bind(user.0)
                    .bind(now.millis())
                    .fetch_all(self.fresh_reader())
                    .await
                    .map_err(db_err("list sessions"))?;
                rows.iter().map(rows::session).collect()
            }

            async fn rotate_refresh(
                &self,
                id: switchyard_core::SessionId,
                rotation: &switchyard_core::auth::Rotation<'_>,
            ) -> Result<switchyard_core::auth::RefreshOutcome> {
                use switchyard_core::auth::RefreshOutcome;
                let mut tx = self.begin_write(true).await?;
                let row = sqlx::query(sql!($dialect, "lock_session"))
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("lock session"))?;
                let Some(row) = row else { return Ok(RefreshOutcome::Invalid) };
                let mut session = rows::session(&row)?;
                let outcome = rotate_session(&mut session, rotation);
                match &outcome {
                    RefreshOutcome::Rotated(s) => {
                        let used = serde_json::to_string(&s.used_hashes).map_err(|e| Error::internal("encode session", e))?;
                        sqlx::query(sql!("common", "update_session_refresh"))
                            .bind(id.0)
                            .bind(&s.refresh_hash)
                            .bind(used)
                            .bind(s.expires_at.millis())
                            .bind(s.last_refreshed_at.millis())
                            .bind(&s.sealed_next)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("rotate refresh token"))?;
                    }
                    RefreshOutcome::Reused => {
                        sqlx::query(sql!("common", "delete_session"))
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err("revoke session"))?;
                    }
                    RefreshOutcome::Repeated(_) | RefreshOutcome::Invalid => {}
                }
                tx.commit().await.map_err(db_err("commit refresh"))?;
                Ok(outcome)
            }

            async fn prune_sessions(&self, before: Timestamp) -> Result<u64> {
                let done = sqlx::query(sql!("common", "prune_sessions"))
                    .bind(before.millis())
                    .execute(self.writer())
                    .await
                    .map_err(db_err("prune sessions"))?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl SettingsStore for $store {
            async fn get_setting(&self, key: &str) -> Result<Option<String>> {
                sqlx::query_scalar(sql!("common", "get_setting"))
                    .bind(key)
                    .fetch_optional(self.fresh_reader())
                    .await
                    .map_err(db_err("get setting"))
            }

            async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
                let mut tx = self.begin_write(true).await?;
                sqlx::query(sql!("common", "init_setting"))
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("init setting"))?;
                tx.commit().await.map_err(db_err("commit"))?;
                self.get_setting(key)
                    .await?
                    .ok_or_else(|| Error::internal_msg(format!("setting {key} vanished")))
            }

            async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
                let mut tx = self.begin_write(true).await?;
                sqlx::query(sql!("common", "put_setting"))
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err("put setting"))?;
                tx.commit().await.map_err(db_err("commit"))?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_store_common;

/// The task columns every task query selects, in `get_task.sql` order.
macro_rules! task_columns {
    () => {
        "id, agent, status, priority, input, output, error, cached, owner_id, idempotency_key, \
         run_at, created_at, updated_at, started_at, finished_at, attempt, worker_id, worker_name, \
         cancel_requested_at, seq, parent_id, fallback_of, fallback_task_id, trace_id"
    };
}
pub(crate) use task_columns;

/// The sqlx database type of a store, for signatures inside the macro.
pub(crate) trait HasDb {
    type Db: sqlx::Database;
}
pub(crate) type DbOf<S> = <S as HasDb>::Db;
