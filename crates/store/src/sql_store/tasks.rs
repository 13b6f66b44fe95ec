//! `TaskStore`: a task's life from submission to its last event.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::json;
use switchyard_core::event::EventBody;
use switchyard_core::store::*;
use switchyard_core::task::{Task, TaskError};
use switchyard_core::{Error, Result, TaskId, Timestamp, WorkerId};

use super::{SqlStore, Tx};
use crate::batch;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, Col, db_err};
use crate::sql::sql;

/// Pages of fair keys a claim reads at most to find keys with room (keys at their
/// `concurrency_per_key` have none).
const MAX_KEY_PAGES: usize = 8;
/// Keys one claim takes turns between at most: more keys are served by the next claims,
/// in turn (a claim reads an index seek per key, so thousands of keys in every claim cost
/// more than the turns are worth).
const KEYS_PER_CLAIM: u32 = 128;
/// Priority levels one claim goes down at most.
const MAX_LEVELS: usize = 4;

impl<D: Dialect> SqlStore<D> {
    /// Fair keys with runnable tasks after `after`, wrapping around (see
    /// [`TaskStore::runnable_keys`]); in `tx` if given.
    async fn turns(
        &self,
        mut tx: Option<&mut Tx<D>>,
        agent: &str,
        now: Timestamp,
        after: Option<&str>,
        limit: u32,
        count_running: bool,
    ) -> Result<Vec<RunnableKey>> {
        let mut keys = self
            .keys_page(
                tx.as_deref_mut(),
                agent,
                now,
                after.unwrap_or(""),
                limit,
                count_running,
            )
            .await?;
        if let Some(cursor) = after
            && (keys.len() as u32) < limit
        {
            // Wrap around: the keys up to the cursor, once.
            let more = self
                .keys_page(tx, agent, now, "", limit - keys.len() as u32, count_running)
                .await?;
            let level = keys.first().map(|k| k.priority);
            keys.extend(more.into_iter().filter(|k| {
                k.fair_key.as_str() <= cursor && level.is_none_or(|p| p == k.priority)
            }));
        }
        Ok(keys)
    }

    async fn keys_page(
        &self,
        tx: Option<&mut Tx<D>>,
        agent: &str,
        now: Timestamp,
        after: &str,
        limit: u32,
        count_running: bool,
    ) -> Result<Vec<RunnableKey>> {
        self.count(1);
        let query = Query::new(sql!("common", "runnable_keys"))
            .bind(agent)
            .bind(now.millis())
            .bind(after)
            .bind(i64::from(limit))
            .bind(count_running);
        let rows = match tx {
            Some(tx) => query.fetch_all(tx.on()).await,
            None => query.fetch_all(self.fresh_reader()).await,
        }
        .map_err(db_err("runnable keys"))?;
        rows.iter()
            .map(|r| {
                Ok(RunnableKey {
                    fair_key: r.string("fair_key")?,
                    priority: i32::try_from(r.i64("priority")?).unwrap_or_default(),
                    running: u32::try_from(r.i64("running")?).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// Claims up to `max` tasks of the demand's agent, taking turns between its fair
    /// keys (see [`AgentDemand`]); in `tx` (the agent locked) if given.
    async fn claim_turns(
        &self,
        mut tx: Option<&mut Tx<D>>,
        request: &ClaimRequest,
        demand: &AgentDemand,
        max: u32,
    ) -> Result<Vec<ClaimedTask>> {
        // The caller's caps, less what each key was given so far.
        let mut caps: Option<HashMap<&str, u32>> = demand
            .keys
            .as_ref()
            .map(|keys| keys.iter().map(|k| (k.fair_key.as_str(), k.max)).collect());
        let mut claimed: Vec<ClaimedTask> = Vec::new();
        let mut left = max;
        // A level's tasks all claimed, the next level down gets the rest.
        for _ in 0..MAX_LEVELS {
            if left == 0 {
                break;
            }
            let open = self
                .open_keys(tx.as_deref_mut(), request, demand, caps.as_ref(), left)
                .await?;
            if open.is_empty() {
                break;
            }
            let got = self
                .claim_shares(tx.as_deref_mut(), request, demand, open, left)
                .await?;
            if got.is_empty() {
                break;
            }
            if let Some(caps) = caps.as_mut() {
                for c in &got {
                    if let Some(cap) = caps.get_mut(c.fair_key.as_str()) {
                        *cap = cap.saturating_sub(1);
                    }
                }
            }
            left -= got.len() as u32;
            claimed.extend(got);
        }
        Ok(claimed)
    }

    /// Keys with room at the highest runnable level, in turn order, up to `want` of them;
    /// keys at their per-key limit (or without starts in `caps`) are passed over.
    async fn open_keys(
        &self,
        mut tx: Option<&mut Tx<D>>,
        request: &ClaimRequest,
        demand: &AgentDemand,
        caps: Option<&HashMap<&str, u32>>,
        want: u32,
    ) -> Result<Vec<(RunnableKey, u32)>> {
        let mut open: Vec<(RunnableKey, u32)> = Vec::new();
        let mut after = demand.after.clone();
        let mut seen = HashSet::new();
        for _ in 0..MAX_KEY_PAGES {
            let page = self
                .turns(
                    tx.as_deref_mut(),
                    &demand.agent,
                    request.now,
                    after.as_deref(),
                    want.min(KEYS_PER_CLAIM),
                    demand.per_key.is_some(),
                )
                .await?;
            let full = page.len() as u32 >= want.min(KEYS_PER_CLAIM);
            for key in page {
                if !seen.insert(key.fair_key.clone()) {
                    continue;
                }
                let mut room = u32::MAX;
                if let Some(per_key) = demand.per_key
                    && switchyard_core::flow::flow_key_of_fair(&key.fair_key).is_some()
                {
                    room = per_key.saturating_sub(key.running);
                }
                if let Some(caps) = caps {
                    room = room.min(caps.get(key.fair_key.as_str()).copied().unwrap_or(0));
                }
                after = Some(key.fair_key.clone());
                if room > 0 {
                    open.push((key, room));
                }
            }
            if !full || open.len() as u32 >= want.min(KEYS_PER_CLAIM) {
                break;
            }
        }
        Ok(open)
    }

    /// Claims up to `max` tasks from `open` keys in two passes: equal shares, then what
    /// keys with fewer tasks left over goes to the keys that used their whole share.
    async fn claim_shares(
        &self,
        mut tx: Option<&mut Tx<D>>,
        request: &ClaimRequest,
        demand: &AgentDemand,
        mut open: Vec<(RunnableKey, u32)>,
        max: u32,
    ) -> Result<Vec<ClaimedTask>> {
        let mut claimed: Vec<ClaimedTask> = Vec::new();
        let mut left = max;
        for _ in 0..2 {
            if left == 0 || open.is_empty() {
                break;
            }
            let rooms: Vec<u32> = open.iter().map(|(_, room)| *room).collect();
            let quotas: Vec<KeyQuota> = switchyard_core::flow::share_turns(left, &rooms)
                .into_iter()
                .zip(&open)
                .filter(|(n, _)| *n > 0)
                .map(|(n, (k, _))| KeyQuota {
                    fair_key: k.fair_key.clone(),
                    priority: k.priority,
                    max: n,
                })
                .collect();
            let got = match tx.as_deref_mut() {
                Some(tx) => {
                    self.dialect
                        .claim_keys(tx.conn(), request, &demand.agent, &quotas)
                        .await?
                }
                None => {
                    self.dialect
                        .claim_keys_atomic(request, &demand.agent, &quotas)
                        .await?
                }
            };
            let mut took: HashMap<&str, u32> = HashMap::new();
            for c in &got {
                *took.entry(c.fair_key.as_str()).or_default() += 1;
            }
            let quota_of: HashMap<&str, u32> = quotas
                .iter()
                .map(|q| (q.fair_key.as_str(), q.max))
                .collect();
            // Keys that filled their share may have more; the others are drained.
            open = open
                .into_iter()
                .filter_map(|(k, room)| {
                    let quota = quota_of.get(k.fair_key.as_str()).copied().unwrap_or(0);
                    let n = took.get(k.fair_key.as_str()).copied().unwrap_or(0);
                    (quota > 0 && n == quota && room > n).then(|| (k, room - n))
                })
                .collect();
            left -= got.len() as u32;
            claimed.extend(got);
        }
        Ok(claimed)
    }
}

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
        let mut claimed = Vec::new();
        for demand in request.demands.iter().filter(|d| d.max > 0) {
            if demand.concurrency.is_none() && demand.per_key.is_none() {
                // No running count to respect: no lock, each claim its own transaction.
                claimed.extend(self.claim_turns(None, request, demand, demand.max).await?);
                continue;
            }
            let mut tx = self.begin_task_path().await?;
            self.dialect.lock_agent(tx.conn(), &demand.agent).await?;
            let mut max = demand.max;
            if let Some(concurrency) = demand.concurrency {
                self.count(1);
                let running = Query::new(sql!("common", "count_running"))
                    .bind(&demand.agent)
                    .fetch_one(tx.on())
                    .await
                    .map_err(db_err("count running"))?
                    .i64_at(0)?;
                max = max.min(u32::try_from(i64::from(concurrency) - running).unwrap_or(0));
            }
            if max > 0 {
                claimed.extend(
                    self.claim_turns(Some(&mut tx), request, demand, max)
                        .await?,
                );
            }
            tx.commit().await.map_err(db_err("commit claim"))?;
        }
        claimed.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn runnable_keys(
        &self,
        agent: &str,
        now: Timestamp,
        after: Option<&str>,
        limit: u32,
        count_running: bool,
    ) -> Result<Vec<RunnableKey>> {
        self.turns(None, agent, now, after, limit, count_running)
            .await
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

    async fn reserve_event_numbers(&self, asks: &[NumberAsk]) -> Result<Vec<NumberBlock>> {
        if asks.is_empty() {
            return Ok(Vec::new());
        }
        let count: HashMap<(TaskId, u32), u64> = asks
            .iter()
            .map(|a| ((a.task_id, a.attempt), a.count.max(1)))
            .collect();
        let mut tx = self.begin_task_path().await?;
        let reserved = self
            .dialect
            .reserve_numbers(tx.conn(), batch::number_asks(asks))
            .await?;
        tx.commit().await.map_err(db_err("commit event numbers"))?;
        Ok(reserved
            .into_iter()
            .filter_map(|r| {
                let n = count.get(&(r.task_id, r.attempt))?;
                Some(NumberBlock {
                    task_id: r.task_id,
                    attempt: r.attempt,
                    first: r.last + 1 - n,
                    last: r.last,
                    agent: r.agent,
                    owner_id: r.owner_id,
                })
            })
            .collect())
    }

    async fn store_events(&self, events: &[NumberedEvent], keep_stream: u32) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let (request, counts) = batch::stored_counts(events);
        let mut tx = self.begin_task_path().await?;
        // Per task still there: the stream number its first stream event here takes.
        let mut next_n: HashMap<TaskId, u64> = HashMap::new();
        let mut cuts = Vec::new();
        for (task_id, streamed) in self.dialect.count_events(tx.conn(), request).await? {
            let added = counts.get(&task_id).map_or(0, |c| c.stream);
            next_n.insert(task_id, streamed + 1 - added);
            if let Some(keep_from) = stream_cut(streamed, added, keep_stream) {
                cuts.push((task_id, keep_from));
            }
        }
        let mut logs = Vec::new();
        let mut stream = Vec::new();
        for e in events {
            let (attempt, event) = (e.attempt, &e.event);
            let Some(n) = next_n.get_mut(&event.task_id) else {
                continue;
            };
            if let EventBody::Log { level, message } = &event.body {
                logs.push(json!({
                    "id": batch::hex_id(&event.task_id.0), "seq": event.seq, "attempt": attempt,
                    "at": event.at.millis(), "level": level.as_str(),
                    "message": crate::content::escape_str(message),
                }));
            } else if event.body.is_stream() {
                if keep_stream > 0 {
                    stream.push(batch::StreamRow {
                        task_id: event.task_id,
                        n: *n,
                        seq: event.seq,
                        attempt,
                        at: event.at.millis(),
                        body: crate::content::stored_json(&event.body),
                    });
                }
                *n += 1;
            }
        }
        if !logs.is_empty() {
            let logs = serde_json::Value::Array(logs).to_string();
            self.dialect.insert_logs(tx.conn(), logs).await?;
        }
        if !stream.is_empty() {
            // In key order: each task's rows go in one after another, into the same
            // leaf page, not one row per task in turn (a stable sort: `n` stays in order).
            stream.sort_by_key(|r| r.task_id);
            self.dialect.insert_stream(tx.conn(), &stream).await?;
        }
        for (task_id, keep_from) in cuts {
            for statement in [
                sql!("common", "cut_stream"),
                sql!("common", "cut_stream_rows"),
            ] {
                Query::new(statement)
                    .bind(task_id.0)
                    .bind(i64::try_from(keep_from).unwrap_or(i64::MAX))
                    .execute(tx.on())
                    .await
                    .map_err(db_err("drop old task stream events"))?;
            }
        }
        tx.commit().await.map_err(db_err("commit events"))
    }

    async fn task_stream(&self, id: TaskId, after_seq: u64, limit: u32) -> Result<TaskStream> {
        let rows = Query::new(sql!("common", "task_stream"))
            .bind(id.0)
            .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await
            .map_err(db_err("task stream"))?;
        let mut stream = TaskStream::default();
        for row in &rows {
            let (n, event, stream_cut) = rows::stream_event(row)?;
            if stream.events.is_empty() && n > 1 && stream_cut > after_seq {
                stream.cut = Some(StreamCut {
                    dropped: n - 1,
                    last_seq: stream_cut,
                });
            }
            stream.events.push(event);
        }
        Ok(stream)
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

    async fn release_claim(&self, worker_id: WorkerId, claimed_at: Timestamp) -> Result<u64> {
        let mut tx = self.begin_write(true).await?;
        let released = Query::new(sql!("common", "release_claim"))
            .bind(worker_id.0)
            .bind(claimed_at.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("release claim"))?;
        tx.commit().await.map_err(db_err("commit released claim"))?;
        Ok(released)
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

    async fn timed_out_attempts(
        &self,
        started_before: &std::collections::BTreeMap<String, Timestamp>,
        otherwise: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRef>> {
        let by_agent: serde_json::Map<String, serde_json::Value> = started_before
            .iter()
            .map(|(agent, at)| (agent.clone(), json!(at.millis())))
            .collect();
        let rows = Query::new(D::SQL.timed_out_attempts)
            .bind(serde_json::Value::Object(by_agent).to_string())
            .bind(otherwise.millis())
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("timed-out attempts"))?;
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

/// After a batch brought a task's stream count to `streamed` (`added` of them new): the
/// number of its oldest event to keep, when it is time to drop the ones before it.
fn stream_cut(streamed: u64, added: u64, keep: u32) -> Option<u64> {
    let keep = u64::from(keep);
    if keep == 0 || added == 0 || streamed <= keep {
        return None;
    }
    let over = streamed - keep;
    let before = (streamed - added).saturating_sub(keep);
    (over / u64::from(STREAM_CUT_EVERY) != before / u64::from(STREAM_CUT_EVERY)).then_some(over + 1)
}
