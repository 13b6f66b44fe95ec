//! The task service: the Data Flow's input side (validate → transform → cache check →
//! queue) and everything a client does with tasks afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::auth::{Permission, Principal};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::error::ErrorCode;
use switchyard_core::event::{BusMessage, SharedEvent, TaskEvent};
use switchyard_core::monitoring::LogQuery;
use switchyard_core::step::Step;
use switchyard_core::store::{
    AttemptRef, CancelOutcome, NewTask, Store, Submitted, TaskLogLine, TaskQuery,
};
use switchyard_core::task::{Task, TaskStatus};
use switchyard_core::wait::SignalSent;
use switchyard_core::{Error, Result, TaskId, Timestamp, UserId};

use crate::agents::AgentRegistry;
use crate::announcer::{announce, announce_resumed};
use crate::completer::result_cache_key;
use crate::config::QueueConfig;
use crate::events::{EventHub, Filter};
use crate::submitter::Submitter;
use crate::waker::Waker;

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const MAX_LIST_LIMIT: u32 = 500;

/// A submission, as parsed from any front door (REST, batch, WebSocket).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubmitRequest {
    /// Pre-assigned id (lets callers subscribe before submitting); fresh if `None`.
    pub id: Option<TaskId>,
    pub agent: String,
    pub input: Value,
    pub priority: Option<i32>,
    pub run_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    pub parent_id: Option<TaskId>,
    pub trace_id: Option<String>,
    /// The flow key (overrides the agent's `concurrency_key` pointer).
    pub concurrency_key: Option<String>,
    /// Set on tasks a schedule fires: its name and the tick.
    pub schedule: Option<(String, Timestamp)>,
}

#[derive(Clone)]
pub struct TaskService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) agents: Arc<AgentRegistry>,
    pub(crate) hub: Arc<EventHub>,
    pub(crate) submitter: Submitter,
    pub(crate) config: QueueConfig,
    pub(crate) metrics: Arc<switchyard_monitoring::Metrics>,
    pub(crate) waker: Waker,
}

/// What a signal did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalOutcome {
    /// The task was waiting for it and is queued again (false: kept for a later wait).
    pub resumed: bool,
}

/// The outcome of a submission that may wait for the result.
pub struct Waited {
    pub task: Task,
    pub created: bool,
    /// The task reached a final state before the wait ended.
    pub finished: bool,
}

impl TaskService {
    /// Validation and transform: schema defaults, the schema check, priority and
    /// scheduling, then the result-cache lookup.
    pub async fn prepare(
        &self,
        principal: &Principal,
        req: SubmitRequest,
        now: Timestamp,
    ) -> Result<NewTask> {
        principal.require(Permission::SubmitTasks)?;
        if let Some(parent) = req.parent_id {
            self.visible(principal, parent).await?;
        }
        self.prepare_owned(
            Some(principal.user_id),
            principal.sees_all_tasks(),
            req,
            now,
        )
        .await
    }

    /// [`TaskService::prepare`] of a task owned by `owner`, once the submitter's rights
    /// (and its right to see the parent task) are checked. Its input may refer to the
    /// owner's files only.
    async fn prepare_for(
        &self,
        owner: Option<UserId>,
        req: SubmitRequest,
        now: Timestamp,
    ) -> Result<NewTask> {
        self.prepare_owned(owner, false, req, now).await
    }

    /// [`TaskService::prepare_for`]; `all_files`: the input may refer to anyone's files.
    async fn prepare_owned(
        &self,
        owner: Option<UserId>,
        all_files: bool,
        req: SubmitRequest,
        now: Timestamp,
    ) -> Result<NewTask> {
        switchyard_core::text::refuse_nul("agent", &req.agent)?;
        if let Some(key) = &req.idempotency_key {
            switchyard_core::text::refuse_nul("idempotency_key", key)?;
        }
        if let Some(key) = &req.concurrency_key {
            switchyard_core::flow::check_flow_key(key)?;
        }
        let entry = self.agents.get(&req.agent).await?.ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownAgent,
                format!("agent {:?} is not registered", req.agent),
            )
        })?;
        let input = match &entry.input_schema {
            Some(schema) => schema.prepare(req.input, "the input")?,
            None => req.input,
        };
        crate::files::check_refs(self.store.as_ref(), &input, owner, all_files).await?;
        let priority = req.priority.unwrap_or(entry.spec().priority);
        if priority.abs() > switchyard_core::agent::MAX_PRIORITY {
            return Err(Error::invalid_parameter(format!(
                "priority must be between -{0} and {0}",
                switchyard_core::agent::MAX_PRIORITY
            )));
        }
        if let Some(key) = &req.idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN)
        {
            return Err(Error::invalid_parameter(format!(
                "idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY_LEN} characters"
            )));
        }
        let run_at = req.run_at.map_or(now, |t| t.max(now));
        if run_at.since(now) > self.config.max_delay_ms {
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                format!(
                    "a task may be scheduled at most {} ms ahead (queue.max_delay_ms); run_at or delay_ms is beyond that",
                    self.config.max_delay_ms
                ),
            )
            .with_details(json!({"violations": [{"pointer": "/run_at", "message": "too far ahead"}]})));
        }
        let cached_output = match entry.spec().cache_ttl_ms {
            Some(_) if run_at <= now => {
                let hit = self.cached_result(&result_cache_key(&entry, &input)).await;
                self.metrics.cache_lookup(&entry.spec().name, hit.is_some());
                hit
            }
            _ => None,
        };
        let flow_key = switchyard_core::flow::flow_key(
            req.concurrency_key.as_deref(),
            entry.spec().flow_key_pointer(),
            &input,
        );
        let (schedule, scheduled_for) = req.schedule.unzip();
        Ok(NewTask {
            id: req.id.unwrap_or_default(),
            agent: entry.spec().name.clone(),
            input,
            priority,
            run_at,
            owner_id: owner,
            idempotency_key: req.idempotency_key,
            parent_id: req.parent_id,
            fallback_of: None,
            trace_id: req.trace_id.or_else(|| Some(new_trace_id())),
            created_at: now,
            flow_key,
            schedule,
            scheduled_for,
            cached_output,
            claim: None,
        })
    }

    async fn cached_result(&self, key: &str) -> Option<Value> {
        match self.cache.get(key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "result cache unavailable; running the task");
                None
            }
        }
    }

    pub async fn submit(&self, principal: &Principal, req: SubmitRequest) -> Result<Submitted> {
        let task = self.prepare(principal, req, Timestamp::now()).await?;
        // The submit → enqueue part of the task's trace (inside the HTTP request's span).
        let span = tracing::debug_span!(
            "task.submit",
            task_id = %task.id,
            agent = %task.agent,
            trace_id = task.trace_id.as_deref().unwrap_or(""),
        );
        let mut out =
            tracing::Instrument::instrument(self.submitter.submit(vec![task]), span).await?;
        out.pop()
            .ok_or_else(|| Error::internal_msg("submission returned nothing"))
    }

    /// Submits a task owned by `owner` whose right to submit it was checked before (a
    /// schedule's tick fires as the schedule's owner).
    pub async fn submit_for(&self, owner: Option<UserId>, req: SubmitRequest) -> Result<Submitted> {
        let task = self.prepare_for(owner, req, Timestamp::now()).await?;
        let mut out = self.submitter.submit(vec![task]).await?;
        out.pop()
            .ok_or_else(|| Error::internal_msg("submission returned nothing"))
    }

    /// Cancels a task and its descendants without a caller to check (a schedule's
    /// `cancel_previous`); a task that already finished is left alone.
    pub async fn cancel_for_schedule(&self, id: TaskId) -> Result<()> {
        let Some(task) = self.store.get_task(id).await? else {
            return Ok(());
        };
        if let CancelOutcome::Cancelled(_) | CancelOutcome::Requested { .. } =
            self.stop(&task).await?
        {
            self.cancel_descendants(id).await;
        }
        Ok(())
    }

    /// Submits a child task of a running task, as its owner: once per (parent, `name`)
    /// (the submission's idempotency key), so a later run that spawns it again gets the
    /// same child. Refused past `queue.max_children_per_task`.
    pub async fn spawn_child(
        &self,
        parent: &AttemptRef,
        name: &str,
        mut req: SubmitRequest,
    ) -> Result<TaskId> {
        let children = self.store.count_children(parent.task_id).await?;
        if children >= self.config.max_children_per_task {
            return Err(Error::new(
                ErrorCode::InvalidState,
                format!(
                    "task {} has {children} child tasks, the most allowed (queue.max_children_per_task)",
                    parent.task_id
                ),
            ));
        }
        req.parent_id = Some(parent.task_id);
        req.idempotency_key = Some(format!("spawn:{}:{name}", parent.task_id));
        req.trace_id = req.trace_id.or_else(|| parent.trace_id.clone());
        let task = self
            .prepare_for(parent.owner_id, req, Timestamp::now())
            .await?;
        let mut out = self.submitter.submit(vec![task]).await?;
        match out.pop() {
            Some(Submitted::Created(t) | Submitted::Existing(t)) => Ok(t.id),
            None => Err(Error::internal_msg("submission returned nothing")),
        }
    }

    /// Sends a signal to a visible task: wakes it if it waits for `name`, or keeps it
    /// until it does.
    pub async fn signal(
        &self,
        principal: &Principal,
        id: TaskId,
        name: &str,
        payload: Value,
    ) -> Result<SignalOutcome> {
        principal.require(Permission::ManageTasks)?;
        switchyard_core::wait::check_signal_name(name)?;
        let bytes = serde_json::to_vec(&payload).map_or(usize::MAX, |v| v.len());
        if bytes > self.config.max_signal_bytes {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the signal's payload is {bytes} bytes of JSON; the most is {} (queue.max_signal_bytes)",
                    self.config.max_signal_bytes
                ),
            ));
        }
        let task = self.visible(principal, id).await?;
        let now = Timestamp::now();
        let sent = self
            .store
            .send_signal(id, name, &payload, now)
            .await?
            .ok_or_else(|| Error::task_not_found(id))?;
        match sent {
            SignalSent::Kept { seq } => {
                let event = TaskEvent::signal_received(&task, seq, name, payload, now);
                self.bus
                    .send(BusMessage::Tasks {
                        events: vec![Arc::new(event)],
                    })
                    .await;
                Ok(SignalOutcome { resumed: false })
            }
            SignalSent::Resumed {
                signal_seq,
                resumed,
            } => {
                let event = TaskEvent::signal_received(&task, signal_seq, name, payload, now);
                announce_resumed(&self.bus, Some(event), &[*resumed], now).await;
                Ok(SignalOutcome { resumed: true })
            }
        }
    }

    /// Submits many tasks in one transaction: all are accepted or none. Validation
    /// errors name the index of each rejected item.
    pub async fn submit_batch(
        &self,
        principal: &Principal,
        reqs: Vec<SubmitRequest>,
    ) -> Result<Vec<Submitted>> {
        principal.require(Permission::SubmitTasks)?;
        if reqs.is_empty() {
            return Err(Error::invalid_parameter("a batch needs at least one task"));
        }
        if reqs.len() > self.config.max_submit_batch {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "a batch holds at most {} tasks, got {}",
                    self.config.max_submit_batch,
                    reqs.len()
                ),
            ));
        }
        let now = Timestamp::now();
        let mut tasks = Vec::with_capacity(reqs.len());
        let mut errors = Vec::new();
        for (index, req) in reqs.into_iter().enumerate() {
            match self.prepare(principal, req, now).await {
                Ok(t) => tasks.push(t),
                Err(e) if e.is_internal() => return Err(e),
                Err(e) => errors.push(json!({
                    "index": index, "code": e.code.as_str(), "message": e.message, "details": e.details,
                })),
            }
        }
        if !errors.is_empty() {
            let first = errors[0]["message"].as_str().unwrap_or_default().to_owned();
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                format!(
                    "{} of the batch's tasks are invalid; nothing was submitted (first: {first})",
                    errors.len()
                ),
            )
            .with_details(json!({ "items": errors })));
        }
        self.submitter.submit(tasks).await
    }

    /// Submits and waits up to `wait` for the task to finish.
    pub async fn submit_and_wait(
        &self,
        principal: &Principal,
        mut req: SubmitRequest,
        wait: Duration,
    ) -> Result<Waited> {
        let id = req.id.unwrap_or_default();
        req.id = Some(id);
        // Subscribe before submitting so the final event cannot slip past.
        let mut sub = self.hub.subscribe(Filter::Task(id), 256);
        let submitted = self.submit(principal, req).await?;
        let (task, created) = match submitted {
            Submitted::Created(t) => (t, true),
            Submitted::Existing(t) => {
                sub = self.hub.subscribe(Filter::Task(t.id), 256);
                let current = self.store.get_task(t.id).await?.unwrap_or(t);
                (current, false)
            }
        };
        if task.status.is_terminal() || wait.is_zero() {
            return Ok(Waited {
                finished: task.status.is_terminal(),
                task,
                created,
            });
        }
        let deadline =
            tokio::time::Instant::now() + wait.min(Duration::from_millis(self.config.max_wait_ms));
        // The task as it stands after the events seen, while they leave it known.
        let id = task.id;
        let mut known = Some(task);
        let finished = loop {
            match tokio::time::timeout_at(deadline, sub.rx.recv()).await {
                Ok(Some(event)) => {
                    known = known.and_then(|t| advanced(t, &event));
                    if event.is_final() {
                        break true;
                    }
                }
                // The hub dropped us (lagging) or the wait ended: read the current state.
                Ok(None) | Err(_) => break false,
            }
        };
        let task = match known.filter(|t| finished && t.status.is_terminal()) {
            Some(task) => task,
            None => self
                .store
                .get_task(id)
                .await?
                .ok_or_else(|| Error::task_not_found(id))?,
        };
        Ok(Waited {
            finished: finished || task.status.is_terminal(),
            task,
            created,
        })
    }

    /// The task if the principal may see it; `task_not_found` otherwise, so ids cannot be probed.
    pub async fn visible(&self, principal: &Principal, id: TaskId) -> Result<Task> {
        principal.require(Permission::ReadTasks)?;
        match self.store.get_task(id).await? {
            Some(t) if principal.can_see_task(t.owner_id) => Ok(t),
            _ => Err(Error::task_not_found(id)),
        }
    }

    /// The task as stored now, for a follower that was already shown it.
    pub async fn current(&self, id: TaskId) -> Result<Option<Task>> {
        self.store.get_task(id).await
    }

    /// A visible task's durable steps, in the order they were first recorded.
    pub async fn steps(&self, principal: &Principal, id: TaskId) -> Result<Vec<Step>> {
        self.visible(principal, id).await?;
        self.store.task_steps(id).await
    }

    /// A visible task's log lines, filtered by level and text when the query asks for it.
    pub async fn logs(&self, principal: &Principal, query: &LogQuery) -> Result<Vec<TaskLogLine>> {
        self.visible(principal, query.task_id).await?;
        if query.min_level.is_none() && query.contains.is_none() {
            self.store
                .task_logs(query.task_id, query.after_seq, query.limit)
                .await
        } else {
            self.store.query_task_logs(query).await
        }
    }

    /// What a follower of `task` missed since `since`: from the replay window, the stored
    /// log lines and the stream events the task kept (with a notice of those it no
    /// longer keeps), plus the current state if newer than all. Without `since`: the
    /// current state only.
    pub async fn backlog(&self, task: &Task, since: Option<u64>) -> Vec<SharedEvent> {
        let Some(since) = since else {
            return vec![Arc::new(TaskEvent::snapshot(task))];
        };
        // Live events are published before their write commits (see the completer): the
        // window can hold events newer than the stored task.
        let recent = self.hub.recent_for_task(task.id, since);
        if task.seq <= since && recent.is_empty() {
            return Vec::new();
        }
        let mut merged: BTreeMap<u64, SharedEvent> = BTreeMap::new();
        for e in recent {
            merged.insert(e.seq, e);
        }
        match self.store.task_logs(task.id, since, 10_000).await {
            Ok(lines) => {
                for l in lines {
                    merged
                        .entry(l.seq)
                        .or_insert_with(|| Arc::new(TaskEvent::log_line(task, l)));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read task logs for a resuming follower")
            }
        }
        let keep = self.config.max_stream_events;
        if keep > 0 {
            // Up to the bound and the events waiting for the next cut.
            let limit = keep.saturating_add(switchyard_core::store::STREAM_CUT_EVERY);
            match self.store.task_stream(task.id, since, limit).await {
                Ok(stream) => {
                    if let Some(cut) = stream.cut {
                        merged.insert(
                            cut.last_seq,
                            Arc::new(TaskEvent::stream_cut(task, cut, keep)),
                        );
                    }
                    for e in stream.events {
                        merged
                            .entry(e.seq)
                            .or_insert_with(|| Arc::new(TaskEvent::kept(task, e)));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a task's stream for a resuming follower")
                }
            }
        }
        merged
            .entry(task.seq)
            .or_insert_with(|| Arc::new(TaskEvent::snapshot(task)));
        merged.into_values().collect()
    }

    pub async fn list(&self, principal: &Principal, mut query: TaskQuery) -> Result<Vec<Task>> {
        principal.require(Permission::ReadTasks)?;
        if let Some(owner) = principal.task_scope() {
            query.owner_id = Some(owner);
        }
        query.limit = query.limit.clamp(1, MAX_LIST_LIMIT);
        self.store.list_tasks(&query).await
    }

    /// Cancels a task: a waiting one at once, a running one by asking its worker. Its
    /// unfinished descendants (child tasks, theirs, ...) are cancelled with it.
    pub async fn cancel(&self, principal: &Principal, id: TaskId) -> Result<Task> {
        principal.require(Permission::ManageTasks)?;
        let task = self.visible(principal, id).await?;
        match self.stop(&task).await? {
            CancelOutcome::AlreadyFinished(status) => {
                return Err(Error::invalid_state(format!(
                    "task {id} already finished ({status}); nothing to cancel"
                )));
            }
            CancelOutcome::NotFound => return Err(Error::task_not_found(id)),
            CancelOutcome::Cancelled(_) | CancelOutcome::Requested { .. } => {}
        }
        self.cancel_descendants(id).await;
        self.store
            .get_task(id)
            .await?
            .ok_or_else(|| Error::task_not_found(id))
    }

    /// Cancels `task` in the store and tells whoever must know: followers of a task that
    /// was waiting, the worker of one that runs.
    async fn stop(&self, task: &Task) -> Result<CancelOutcome> {
        let now = Timestamp::now();
        let outcome = self.store.cancel_task(task.id, now).await?;
        match &outcome {
            CancelOutcome::Cancelled(t) => {
                if let Some(parent) = task.parent_id {
                    self.waker.child_finished(parent);
                }
                self.metrics
                    .finished(&task.agent, TaskStatus::Cancelled, Some(task.created_at));
                announce(&self.bus, vec![(**t).clone()], now).await;
            }
            CancelOutcome::Requested {
                worker_id: Some(worker_id),
                attempt,
            } => {
                self.bus
                    .send(BusMessage::Cancel {
                        task_id: task.id,
                        attempt: *attempt,
                        worker_id: *worker_id,
                    })
                    .await;
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// Cancels the unfinished tasks below `root` in its tree of child tasks, level by level.
    /// Best effort: a child that cannot be cancelled now is logged and the rest go on.
    async fn cancel_descendants(&self, root: TaskId) {
        const PAGE: u32 = 500;
        let mut parents = vec![root];
        // Parents are named at submit time, so a tree cannot loop; the set makes sure.
        let mut visited = std::collections::HashSet::from([root]);
        while let Some(parent) = parents.pop() {
            let mut query = TaskQuery {
                parent_id: Some(parent),
                statuses: vec![
                    TaskStatus::Queued,
                    TaskStatus::Retrying,
                    TaskStatus::Running,
                    TaskStatus::Waiting,
                ],
                limit: PAGE,
                ..TaskQuery::default()
            };
            loop {
                let children = match self.store.list_tasks(&query).await {
                    Ok(children) => children,
                    Err(e) => {
                        tracing::warn!(error = %e, %parent, "could not list child tasks to cancel");
                        break;
                    }
                };
                for child in &children {
                    if let Err(e) = self.stop(child).await {
                        tracing::warn!(error = %e, task = %child.id, "could not cancel a child task");
                    }
                    if visited.insert(child.id) {
                        parents.push(child.id);
                    }
                }
                match children.last() {
                    Some(last) if children.len() == PAGE as usize => {
                        query.before_id = Some(last.id)
                    }
                    _ => break,
                }
            }
        }
    }

    pub async fn retry(&self, principal: &Principal, id: TaskId) -> Result<Task> {
        principal.require(Permission::ManageTasks)?;
        self.visible(principal, id).await?;
        let now = Timestamp::now();
        let transition = self
            .store
            .replay_task(id, now)
            .await?
            .ok_or_else(|| Error::task_not_found(id))?;
        // Read back before the announcement wakes a dispatcher: the answer is the task as
        // replayed (queued), not whatever it has become by then (on a fast path, finished).
        let task = self
            .store
            .get_task(id)
            .await?
            .ok_or_else(|| Error::task_not_found(id))?;
        announce(&self.bus, vec![transition], now).await;
        Ok(task)
    }
}

/// The task after `event`, if the event leaves it fully known without reading the store:
/// the next in sequence, and either a live event (logs, progress, partial output and steps
/// are not part of the task) or the end of the attempt the task is running. A new attempt
/// (whose worker no event names), a gap or anything else gives `None`: read the store.
fn advanced(mut task: Task, event: &switchyard_core::event::TaskEvent) -> Option<Task> {
    use switchyard_core::event::EventBody;
    use switchyard_core::task::AttemptStatus;
    if event.seq <= task.seq {
        // Already reflected (a task inserted running has seen its `queued` and `running`).
        return Some(task);
    }
    if event.seq != task.seq + 1 {
        return None;
    }
    task.seq = event.seq;
    let (status, attempt, error) = match &event.body {
        EventBody::Log { .. }
        | EventBody::Progress { .. }
        | EventBody::Partial { .. }
        | EventBody::StepFinished { .. }
        | EventBody::SignalReceived { .. } => {
            return Some(task);
        }
        EventBody::Waiting { .. } | EventBody::Resumed { .. } => return None,
        EventBody::Result {
            status,
            attempt,
            output,
            ..
        } => {
            task.output = Some(output.clone());
            (*status, *attempt, None)
        }
        EventBody::Error {
            status,
            attempt,
            error,
            fallback_task_id,
        } => {
            task.fallback_task_id = *fallback_task_id;
            (*status, *attempt, Some(error.clone()))
        }
        EventBody::Status {
            status,
            attempt,
            error,
            ..
        } if *status == TaskStatus::Cancelled => (*status, *attempt, error.clone()),
        EventBody::Status { .. } => return None,
    };
    let current = task.attempts.last_mut()?;
    if !status.is_terminal()
        || current.number != attempt
        || current.status != AttemptStatus::Running
    {
        return None;
    }
    current.status = match status {
        TaskStatus::Succeeded => AttemptStatus::Succeeded,
        TaskStatus::Cancelled => AttemptStatus::Cancelled,
        _ => AttemptStatus::Failed,
    };
    current.finished_at = Some(event.at);
    current.error = error.clone();
    task.status = status;
    task.error = error;
    task.updated_at = event.at;
    task.finished_at = Some(event.at);
    task.cancel_requested = false;
    Some(task)
}

/// A W3C trace id: 16 random bytes as 32 lowercase hex digits.
pub fn new_trace_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_core::event::{EventBody, TaskEvent};
    use switchyard_core::task::{Attempt, AttemptStatus, Task, TaskStatus};
    use switchyard_core::{TaskId, Timestamp, WorkerId};

    use super::advanced;

    /// A task as a submission inserted straight into a free slot returns it: `running`,
    /// its `queued` (seq 1) and `running` (seq 2) events already behind it.
    fn running_task() -> Task {
        let at = Timestamp::from_millis(1_800_000_000_000);
        Task {
            id: TaskId::new(),
            agent: "echo".into(),
            status: TaskStatus::Running,
            priority: 0,
            input: json!({"x": 1}),
            output: None,
            error: None,
            cached: false,
            owner_id: None,
            idempotency_key: None,
            run_at: at,
            created_at: at,
            updated_at: at,
            started_at: Some(at),
            finished_at: None,
            attempts: vec![Attempt {
                number: 1,
                status: AttemptStatus::Running,
                worker_id: Some(WorkerId::new()),
                worker: Some("local".into()),
                started_at: at,
                finished_at: None,
                error: None,
            }],
            parent_id: None,
            fallback_of: None,
            fallback_task_id: None,
            trace_id: None,
            cancel_requested: false,
            seq: 2,
            wait: None,
            concurrency_key: None,
            schedule: None,
            scheduled_for: None,
        }
    }

    fn event(task: &Task, seq: u64, body: EventBody) -> TaskEvent {
        TaskEvent {
            task_id: task.id,
            seq,
            agent: task.agent.clone(),
            owner_id: None,
            at: task.created_at.plus_ms(5),
            body,
        }
    }

    #[test]
    fn a_waiter_follows_the_events_it_has_not_seen_and_skips_the_ones_it_has() {
        let task = running_task();
        let status = |status| EventBody::Status {
            status,
            attempt: 1,
            error: None,
            run_at: None,
        };
        let result = EventBody::Result {
            status: TaskStatus::Succeeded,
            attempt: 1,
            output: json!({"x": 1}),
            cached: false,
        };
        let mut known = Some(task.clone());
        for e in [
            event(&task, 1, status(TaskStatus::Queued)),
            event(&task, 2, status(TaskStatus::Running)),
            event(&task, 3, result.clone()),
        ] {
            known = known.and_then(|t| advanced(t, &e));
        }
        let done = known.expect("every event was either known or the next one");
        assert_eq!(done.status, TaskStatus::Succeeded);
        assert_eq!(done.output, Some(json!({"x": 1})));
        assert_eq!(done.seq, 3);
        assert_eq!(done.attempts[0].status, AttemptStatus::Succeeded);

        // A gap (an event missed) means the state is no longer known: read it instead.
        assert!(advanced(task, &event(&running_task(), 4, result)).is_none());
    }

    /// Live events are published before their write commits (see the completer): a
    /// follower resuming from the stored task's seq in between finds them in the hub's
    /// window of recent events.
    #[tokio::test]
    async fn a_resuming_follower_gets_events_not_stored_yet() {
        let (_dir, engine) = crate::worker_session::tests::engine(1_000).await;
        let now = Timestamp::now();
        let queued = switchyard_store::conformance::new_task("other", 0, now);
        engine
            .store
            .insert_tasks(vec![queued.clone()], now)
            .await
            .unwrap();
        let task = engine.store.get_task(queued.id).await.unwrap().unwrap();
        let partial = std::sync::Arc::new(event(
            &task,
            task.seq + 1,
            EventBody::Partial {
                data: json!({"delta": "tok"}),
            },
        ));
        engine.hub().deliver(&[partial]);
        let backlog = engine.tasks().backlog(&task, Some(task.seq)).await;
        assert!(
            backlog.iter().any(|e| e.seq == task.seq + 1),
            "{:?}",
            backlog.iter().map(|e| e.seq).collect::<Vec<_>>()
        );
    }
}
