//! The database interface. Implemented by `SqliteStore` and `PgStore`
//! (`switchyard-store`) and proven identical by one conformance suite.
//!
//! Hot paths take batches: `insert_tasks`, `claim_tasks`, `complete_tasks` and
//! `store_events` each do their whole batch in one transaction and a fixed number of
//! statements, so the cost per task shrinks as load grows.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use crate::agent::Agent;
use crate::auth::{ApiKey, RefreshOutcome, Role, Rotation, Session, User};
use crate::error::Result;
use crate::event::{EventBody, LogLevel, SharedEvent, TaskEvent};
use crate::ids::{ApiKeyId, SessionId, TaskId, UserId, WorkerId};
use crate::monitoring::{
    AgentReportRow, AlertEvent, AlertEventQuery, AlertRule, AlertState, LogQuery, MetricPoint,
    MetricRow, MetricRowQuery, NotifyUpdate,
};
use crate::step::{Step, StepDraft, StepRecord};
use crate::task::{Task, TaskError, TaskStatus};
use crate::time::Timestamp;
use crate::wait::{Resumed, SignalSent, Wait, WaitBegun};

/// A task about to be inserted.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTask {
    pub id: TaskId,
    pub agent: String,
    pub input: Value,
    pub priority: i32,
    pub run_at: Timestamp,
    pub owner_id: Option<UserId>,
    pub idempotency_key: Option<String>,
    pub parent_id: Option<TaskId>,
    pub fallback_of: Option<TaskId>,
    pub trace_id: Option<String>,
    pub created_at: Timestamp,
    /// Its flow key (see `flow::flow_key`).
    pub flow_key: Option<String>,
    /// The schedule that fired it, and the tick.
    pub schedule: Option<String>,
    pub scheduled_for: Option<Timestamp>,
    /// Set when the result cache answered: the task is inserted already `succeeded`.
    pub cached_output: Option<Value>,
    /// Set when a local consumer had a free slot: the task is inserted already `running`
    /// (its first attempt leased to that consumer), skipping the queue and a claim.
    pub claim: Option<DirectClaim>,
}

/// The lease of a task that is inserted already claimed (see [`NewTask::claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectClaim {
    pub worker_id: WorkerId,
    pub worker_name: String,
    pub lease_expires_at: Timestamp,
}

impl NewTask {
    /// The status the task is inserted with.
    pub fn initial_status(&self) -> TaskStatus {
        if self.cached_output.is_some() {
            TaskStatus::Succeeded
        } else if self.claim.is_some() {
            TaskStatus::Running
        } else {
            TaskStatus::Queued
        }
    }

    /// The sequence number of its latest event once inserted: `queued` is 1, and a task
    /// inserted claimed has had its `running` event (2) too.
    pub fn initial_seq(&self) -> u64 {
        if self.claim.is_some() && self.cached_output.is_none() {
            2
        } else {
            1
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Submitted {
    Created(Task),
    /// A task with the same owner and idempotency key exists within the window.
    Existing(Task),
}

impl Submitted {
    pub fn task(&self) -> &Task {
        match self {
            Submitted::Created(t) | Submitted::Existing(t) => t,
        }
    }

    pub fn into_task(self) -> Task {
        match self {
            Submitted::Created(t) | Submitted::Existing(t) => t,
        }
    }
}

/// Filters for listing tasks; all optional. Results are newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskQuery {
    /// Only tasks of this owner (the caller's visibility scope).
    pub owner_id: Option<UserId>,
    pub agent: Option<String>,
    pub statuses: Vec<TaskStatus>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub parent_id: Option<TaskId>,
    /// Cursor: only tasks with an id smaller than this (i.e. older).
    pub before_id: Option<TaskId>,
    /// Full-text search over agent, input, output, error and log lines: tasks holding
    /// every word (see `monitoring::search_terms`). Indexed asynchronously, so a task is
    /// found a few seconds after it was submitted or finished.
    pub text: Option<String>,
    pub limit: u32,
}

/// How many tasks of one agent a claimer can take now.
///
/// A claim takes turns between the agent's fair keys (see `flow`) at the highest
/// priority level that has runnable tasks: each key gets an equal share of `max`
/// (what a key cannot use goes to the others), starting after `after`, so a key's
/// backlog never holds up another key's tasks by more than one claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentDemand {
    pub agent: String,
    pub max: u32,
    /// The agent's cluster-wide concurrency limit; the claim never exceeds it.
    pub concurrency: Option<u32>,
    /// The agent's `concurrency_per_key`: at most this many running tasks per flow key.
    pub per_key: Option<u32>,
    /// The fair key the previous claim ended with: turns start after it.
    pub after: Option<String>,
    /// The keys to claim from and at most how many of each (found by
    /// [`TaskStore::runnable_keys`] and rate-limited per key by the caller); `None`: the
    /// claim finds them itself.
    pub keys: Option<Vec<KeyQuota>>,
}

/// At most `max` tasks of one fair key at one priority level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyQuota {
    pub fair_key: String,
    pub priority: i32,
    pub max: u32,
}

/// A fair key with runnable tasks at the highest runnable priority level of its agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnableKey {
    pub fair_key: String,
    pub priority: i32,
    /// Running tasks of its flow key (counted only when asked, else 0).
    pub running: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    pub worker_id: WorkerId,
    pub worker_name: String,
    pub now: Timestamp,
    pub lease_ms: u64,
    pub demands: Vec<AgentDemand>,
}

/// A task handed to a worker, with the lease that makes its result count.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedTask {
    pub id: TaskId,
    pub agent: String,
    pub input: Value,
    pub priority: i32,
    /// The attempt number this claim created; results must quote it.
    pub attempt: u32,
    /// Attempts made since submission or the last replay, this one included.
    pub attempts_in_run: u32,
    pub seq: u64,
    pub owner_id: Option<UserId>,
    pub parent_id: Option<TaskId>,
    pub trace_id: Option<String>,
    pub created_at: Timestamp,
    /// When the task became runnable (for the queue-wait latency).
    pub run_at: Timestamp,
    /// When this claim was made.
    pub claimed_at: Timestamp,
    /// The key dispatch took turns by (see `flow::fair_key`).
    pub fair_key: String,
}

impl ClaimedTask {
    /// Whether an earlier run may have recorded durable steps: a first attempt has none,
    /// so its assignment needs no read of them.
    pub fn ran_before(&self) -> bool {
        self.attempt > 1
    }
}

/// A running attempt, with what running it and deciding its outcome need: as a claim
/// hands it to a worker, or as the store finds it running (leases the reaper recovers,
/// orphans of a restart).
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRef {
    pub task_id: TaskId,
    pub agent: String,
    pub attempt: u32,
    pub attempts_in_run: u32,
    /// The worker holding the lease, when the store reported it.
    pub worker_id: Option<WorkerId>,
    pub input: Value,
    pub owner_id: Option<UserId>,
    pub parent_id: Option<TaskId>,
    pub trace_id: Option<String>,
    /// For latency metrics and trace spans, when known (not for reaped leases).
    pub created_at: Option<Timestamp>,
    pub claimed_at: Option<Timestamp>,
}

impl From<ClaimedTask> for AttemptRef {
    fn from(c: ClaimedTask) -> Self {
        AttemptRef {
            task_id: c.id,
            agent: c.agent,
            attempt: c.attempt,
            attempts_in_run: c.attempts_in_run,
            worker_id: None,
            input: c.input,
            owner_id: c.owner_id,
            parent_id: c.parent_id,
            trace_id: c.trace_id,
            created_at: Some(c.created_at),
            claimed_at: Some(c.claimed_at),
        }
    }
}

/// The end of an attempt, as decided by the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded {
        output: Value,
    },
    /// Back to the queue, runnable at `run_at`.
    Retry {
        error: TaskError,
        run_at: Timestamp,
    },
    /// Failed for good; `fallback` takes over (it is inserted in the same transaction).
    Fallback {
        error: TaskError,
        fallback: Box<NewTask>,
    },
    Dead {
        error: TaskError,
    },
    Cancelled {
        error: Option<TaskError>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub task_id: TaskId,
    /// The attempt (lease) this result belongs to; stale attempts are rejected.
    pub attempt: u32,
    pub at: Timestamp,
    pub outcome: Outcome,
}

/// A recorded state change, enough to build its event.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub task_id: TaskId,
    pub agent: String,
    pub owner_id: Option<UserId>,
    pub status: TaskStatus,
    pub seq: u64,
    pub attempt: u32,
    pub at: Timestamp,
    pub run_at: Timestamp,
    pub output: Option<Value>,
    pub error: Option<TaskError>,
    pub fallback_task_id: Option<TaskId>,
    pub cached: bool,
}

impl Transition {
    /// The first transition of a just-inserted task (`queued`, or `succeeded` from cache).
    pub fn inserted(t: &Task) -> Self {
        Transition {
            task_id: t.id,
            agent: t.agent.clone(),
            owner_id: t.owner_id,
            status: t.status,
            seq: t.seq,
            attempt: 0,
            at: t.created_at,
            run_at: t.run_at,
            output: t.output.clone(),
            error: None,
            fallback_task_id: None,
            cached: t.cached,
        }
    }

    /// The event clients see for this transition.
    pub fn event_body(&self) -> EventBody {
        match (self.status, &self.output, &self.error) {
            (TaskStatus::Succeeded, output, _) => EventBody::Result {
                status: self.status,
                attempt: self.attempt,
                output: output.clone().unwrap_or(Value::Null),
                cached: self.cached,
            },
            (TaskStatus::Failed | TaskStatus::Dead, _, Some(error)) => EventBody::Error {
                status: self.status,
                attempt: self.attempt,
                error: error.clone(),
                fallback_task_id: self.fallback_task_id,
            },
            (status, _, error) => EventBody::Status {
                status,
                attempt: self.attempt,
                error: error.clone(),
                run_at: status.is_queued().then_some(self.run_at),
            },
        }
    }
}

/// Result of a batch completion: the transitions recorded (stale results are absent)
/// plus the fallback tasks created.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompletionResult {
    pub transitions: Vec<Transition>,
    pub rejected: Vec<TaskId>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CancelOutcome {
    /// It was waiting and is now cancelled.
    Cancelled(Box<Transition>),
    /// It is running; the worker holding `attempt` must be told to stop.
    Requested {
        worker_id: Option<WorkerId>,
        attempt: u32,
    },
    /// Already finished: nothing to cancel.
    AlreadyFinished(TaskStatus),
    NotFound,
}

/// A live event of a running attempt, to be numbered (and stored, for logs).
#[derive(Clone, Debug, PartialEq)]
pub struct EventDraft {
    pub task_id: TaskId,
    pub attempt: u32,
    pub at: Timestamp,
    pub body: EventBody,
}

/// A numbered live event; `None` seq means the attempt no longer holds the lease.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub draft: EventDraft,
    pub seq: Option<u64>,
    pub agent: String,
    pub owner_id: Option<UserId>,
}

/// Event numbers a running attempt asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberAsk {
    pub task_id: TaskId,
    pub attempt: u32,
    pub count: u64,
}

impl NumberAsk {
    /// The numbers `drafts` need: one ask per attempt, in the order they first appear.
    pub fn for_drafts(drafts: &[EventDraft]) -> Vec<NumberAsk> {
        let mut asks: Vec<NumberAsk> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for d in drafts {
            let i = *index.entry((d.task_id, d.attempt)).or_insert_with(|| {
                asks.push(NumberAsk {
                    task_id: d.task_id,
                    attempt: d.attempt,
                    count: 0,
                });
                asks.len() - 1
            });
            asks[i].count += 1;
        }
        asks
    }
}

/// A block of event numbers (`first..=last`) reserved for a running attempt, with who its
/// events are attributed to.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberBlock {
    pub task_id: TaskId,
    pub attempt: u32,
    pub first: u64,
    pub last: u64,
    pub agent: String,
    pub owner_id: Option<UserId>,
}

/// A live event numbered from a reserved block, to store (shared with its subscribers).
#[derive(Clone, Debug)]
pub struct NumberedEvent {
    pub attempt: u32,
    pub event: SharedEvent,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskLogLine {
    pub task_id: TaskId,
    pub seq: u64,
    pub attempt: u32,
    pub at: Timestamp,
    pub level: LogLevel,
    pub message: String,
}

/// Stream events are dropped this many at a time at least, so that a long stream costs a
/// delete now and then rather than one on every batch: a task holds up to its bound
/// (`queue.max_stream_events`) plus this.
pub const STREAM_CUT_EVERY: u32 = 256;

/// A stream event (progress, partial output) a task kept.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvent {
    pub seq: u64,
    pub attempt: u32,
    pub at: Timestamp,
    pub body: EventBody,
}

/// A task's kept stream events after some seq, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskStream {
    pub events: Vec<StreamEvent>,
    /// The older stream events the task no longer keeps (`queue.max_stream_events`):
    /// how many, and the seq of the newest of them. `None` when nothing was dropped.
    pub cut: Option<StreamCut>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamCut {
    pub dropped: u64,
    pub last_seq: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AgentQueueStats {
    pub agent: String,
    /// Waiting and runnable now.
    pub ready: u64,
    /// Waiting for a future `run_at` (delayed or backing off).
    pub scheduled: u64,
    pub running: u64,
    pub oldest_ready_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret_hash: String,
}

/// A process or connection that runs tasks.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    pub id: WorkerId,
    pub name: String,
    /// `builtin` (a worker process running built-in kinds) or `remote` (an SDK worker).
    pub kind: String,
    pub agents: Vec<String>,
    pub slots: u32,
    pub slots_in_use: u32,
    pub version: String,
    pub host: Option<String>,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
}

/// Resolves once a write is durable (see [`TaskStore::insert_tasks_then_sync`]).
pub type Synced = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// A [`Synced`] for a write that is durable already.
pub fn already_synced() -> Synced {
    Box::pin(std::future::ready(Ok(())))
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Inserts a batch in one transaction and returns once it is durable. A task whose
    /// (owner, idempotency key) exists with `created_at` after `idempotency_since` is not
    /// inserted: the existing one is returned.
    async fn insert_tasks(
        &self,
        batch: Vec<NewTask>,
        idempotency_since: Timestamp,
    ) -> Result<Vec<Submitted>> {
        let (out, synced) = self
            .insert_tasks_then_sync(&batch, idempotency_since)
            .await?;
        synced.await?;
        Ok(out)
    }

    /// [`TaskStore::insert_tasks`], returning as soon as the batch is committed and
    /// visible, with a future that resolves once it is durable. Work on the tasks may
    /// start at once, overlapping the flush to disk; they must not be acknowledged to
    /// the submitter before the future resolves. Backends whose commits are durable
    /// return [`already_synced`].
    async fn insert_tasks_then_sync(
        &self,
        batch: &[NewTask],
        idempotency_since: Timestamp,
    ) -> Result<(Vec<Submitted>, Synced)>;

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>>;

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>>;

    /// Claims up to each demand's `max` runnable tasks (highest priority, then oldest),
    /// respecting concurrency limits, and leases them to the worker.
    async fn claim_tasks(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>>;

    /// Up to `limit` fair keys of `agent` with tasks runnable at `now` at its highest
    /// runnable priority level, in key order after `after` (wrapping around), with the
    /// running tasks of each flow key when `count_running`.
    async fn runnable_keys(
        &self,
        agent: &str,
        now: Timestamp,
        after: Option<&str>,
        limit: u32,
        count_running: bool,
    ) -> Result<Vec<RunnableKey>>;

    /// Records the end of attempts. Results for attempts that no longer hold their
    /// lease (cancelled, reaped, already completed) are rejected, never recorded twice.
    async fn complete_tasks(&self, batch: &[Completion]) -> Result<CompletionResult>;

    /// Reserves a block of `count` event numbers for each running attempt asked for,
    /// after every number its task has handed out: whatever the task records afterwards
    /// (a status change, a signal, another block) is numbered after the block. Attempts
    /// no longer running get none. The task's `seq`, which its snapshot reports, moves
    /// only as events are stored.
    async fn reserve_event_numbers(&self, asks: &[NumberAsk]) -> Result<Vec<NumberBlock>>;

    /// Stores live events numbered from reserved blocks: the log lines among them, and
    /// the stream events (progress, partial output), of which each task keeps its last
    /// `keep_stream` (0: none), dropping the oldest a few at a time. Each task's `seq`
    /// moves up to its newest event stored. Events of tasks that are gone are skipped.
    async fn store_events(&self, events: &[NumberedEvent], keep_stream: u32) -> Result<()>;

    /// Numbers live events of running attempts with exactly the numbers they need, and
    /// stores them, for a caller that does not publish them first. Events of attempts no
    /// longer running get no number and are not stored.
    async fn record_events(
        &self,
        batch: Vec<EventDraft>,
        keep_stream: u32,
    ) -> Result<Vec<RecordedEvent>> {
        let mut blocks: std::collections::HashMap<(TaskId, u32), NumberBlock> = self
            .reserve_event_numbers(&NumberAsk::for_drafts(&batch))
            .await?
            .into_iter()
            .map(|b| ((b.task_id, b.attempt), b))
            .collect();
        let mut recorded = Vec::with_capacity(batch.len());
        let mut numbered = Vec::new();
        for draft in batch {
            let Some(block) = blocks.get_mut(&(draft.task_id, draft.attempt)) else {
                recorded.push(RecordedEvent {
                    draft,
                    seq: None,
                    agent: String::new(),
                    owner_id: None,
                });
                continue;
            };
            let seq = block.first;
            block.first += 1;
            let r = RecordedEvent {
                draft,
                seq: Some(seq),
                agent: block.agent.clone(),
                owner_id: block.owner_id,
            };
            numbered.push(NumberedEvent {
                attempt: r.draft.attempt,
                event: std::sync::Arc::new(TaskEvent {
                    task_id: r.draft.task_id,
                    seq,
                    agent: r.agent.clone(),
                    owner_id: r.owner_id,
                    at: r.draft.at,
                    body: r.draft.body.clone(),
                }),
            });
            recorded.push(r);
        }
        self.store_events(&numbered, keep_stream).await?;
        Ok(recorded)
    }

    async fn task_logs(&self, id: TaskId, after_seq: u64, limit: u32) -> Result<Vec<TaskLogLine>>;

    /// A task's kept stream events after `after_seq`, oldest first.
    async fn task_stream(&self, id: TaskId, after_seq: u64, limit: u32) -> Result<TaskStream>;

    /// Puts back in the queue what a claim made at `claimed_at` leased to `worker_id`,
    /// when the claim failed after it may have committed (its answer never came back);
    /// returns how many tasks.
    async fn release_claim(&self, worker_id: WorkerId, claimed_at: Timestamp) -> Result<u64>;

    /// Extends the leases of every task the worker holds; returns how many.
    async fn extend_leases(&self, worker_id: WorkerId, until: Timestamp) -> Result<u64>;

    /// Running attempts whose lease ended before `now`.
    async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<AttemptRef>>;

    /// Running attempts, of one worker or of all.
    async fn running_tasks(
        &self,
        worker_id: Option<WorkerId>,
        limit: u32,
    ) -> Result<Vec<AttemptRef>>;

    /// Running attempts that started before their agent's entry in `started_before`
    /// (agent name → time), or before `otherwise` for agents it does not name: attempts
    /// past their timeout, which the server ends itself.
    async fn timed_out_attempts(
        &self,
        started_before: &std::collections::BTreeMap<String, Timestamp>,
        otherwise: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRef>>;

    /// Running attempts asked to cancel before `requested_before` that still run.
    async fn overdue_cancellations(
        &self,
        requested_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRef>>;

    async fn cancel_task(&self, id: TaskId, now: Timestamp) -> Result<CancelOutcome>;

    /// Puts a dead, failed or cancelled task back in the queue with a fresh attempt budget.
    /// `Ok(None)` if it does not exist; an `invalid_state` error if it cannot be replayed.
    async fn replay_task(&self, id: TaskId, now: Timestamp) -> Result<Option<Transition>>;

    async fn queue_stats(&self, now: Timestamp) -> Result<Vec<AgentQueueStats>>;

    /// Agents with tasks runnable at `now`.
    async fn ready_agents(&self, now: Timestamp) -> Result<Vec<String>>;

    /// The earliest `run_at` after `now` among waiting tasks.
    async fn next_run_at(&self, now: Timestamp) -> Result<Option<Timestamp>>;

    /// Forgets idempotency keys of tasks created before `before`; returns how many.
    async fn expire_idempotency_keys(&self, before: Timestamp) -> Result<u64>;
}

/// Storage of durable steps (see [`crate::step`]).
#[async_trait]
pub trait StepStore: Send + Sync {
    /// Records a step's outcome, if the task is running `draft.attempt`: a new step (when
    /// the task holds fewer than `max_steps`), or the next run of a failed one. A step
    /// that succeeded before is kept as it is.
    async fn record_step(&self, draft: &StepDraft, max_steps: u32) -> Result<StepRecord>;
    /// The task's steps, in the order they were first recorded.
    async fn task_steps(&self, id: TaskId) -> Result<Vec<Step>>;
    /// The outputs of the task's steps that succeeded, by name, in recorded order.
    async fn succeeded_steps(&self, id: TaskId) -> Result<Vec<(String, Value)>>;
}

/// Durable waits and signals (see [`crate::wait`]).
#[async_trait]
pub trait WaitStore: Send + Sync {
    /// Begins `wait` for the running `attempt` of `task`, as one transaction: a wait whose
    /// step succeeded before gives its result; one already over (the time passed, a kept
    /// signal, finished children) is recorded as a succeeded step and given; otherwise
    /// the attempt ends (`suspended`) and the task is `waiting`. `max_steps` bounds the
    /// task's steps as for [`StepStore::record_step`].
    async fn begin_wait(
        &self,
        task: TaskId,
        attempt: u32,
        wait: &Wait,
        now: Timestamp,
        max_steps: u32,
    ) -> Result<WaitBegun>;
    /// Queues again up to `limit` waiting tasks whose time is up (a sleep over: its step
    /// succeeds with `null`; a signal wait timed out: its step fails with `wait_timeout`).
    async fn resume_due(&self, now: Timestamp, limit: u32) -> Result<Vec<Resumed>>;
    /// Queues again the tasks among `parents` (all waiting joins, when `None`) whose
    /// joined children have all finished; the join's step succeeds with their results.
    async fn resume_joined(
        &self,
        parents: Option<&[TaskId]>,
        now: Timestamp,
    ) -> Result<Vec<Resumed>>;
    /// When the next waiting task's time is up, if any has a time.
    async fn next_wait_deadline(&self) -> Result<Option<Timestamp>>;
    /// Sends a signal: wakes the task if it waits for it, keeps it for a later wait
    /// otherwise. `None`: no such task. Refused (`conflict`) for a finished task or one
    /// that holds [`crate::wait::MAX_PENDING_SIGNALS`] signals already.
    async fn send_signal(
        &self,
        task: TaskId,
        name: &str,
        payload: &Value,
        now: Timestamp,
    ) -> Result<Option<SignalSent>>;
    /// The step named `name` of `task`, if recorded.
    async fn get_step(&self, task: TaskId, name: &str) -> Result<Option<Step>>;
    /// How many child tasks `parent` has.
    async fn count_children(&self, parent: TaskId) -> Result<u64>;
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Inserts or replaces an agent definition.
    async fn put_agent(&self, agent: &Agent) -> Result<()>;
    async fn get_agent(&self, name: &str) -> Result<Option<Agent>>;
    async fn list_agents(&self) -> Result<Vec<Agent>>;
    async fn delete_agent(&self, name: &str) -> Result<bool>;
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Fails with `email_taken` if the email exists.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;
    /// The user and its password hash.
    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn update_user(
        &self,
        id: UserId,
        patch: UserPatch,
        now: Timestamp,
    ) -> Result<Option<User>>;
    async fn count_users(&self) -> Result<u64>;
    /// The user a single sign-on identity (the provider's issuer and subject) belongs to.
    async fn user_by_oidc_subject(&self, issuer: &str, subject: &str) -> Result<Option<User>>;
    /// Creates a user linked to a single sign-on identity. Fails with `email_taken` if
    /// the email exists or the identity is already linked (a concurrent first login).
    async fn create_oidc_user(&self, user: NewUser, issuer: &str, subject: &str) -> Result<User>;

    async fn create_api_key(&self, key: NewApiKey) -> Result<()>;
    async fn api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>>;
    async fn list_api_keys(&self, user: Option<UserId>) -> Result<Vec<ApiKey>>;
    /// Revokes a key (of `user`, if given); returns whether one was revoked.
    async fn revoke_api_key(
        &self,
        id: ApiKeyId,
        user: Option<UserId>,
        now: Timestamp,
    ) -> Result<bool>;
    async fn touch_api_key(&self, id: ApiKeyId, now: Timestamp) -> Result<()>;
}

#[async_trait]
pub trait WorkerStore: Send + Sync {
    async fn upsert_worker(&self, worker: &WorkerInfo) -> Result<()>;
    async fn remove_worker(&self, id: WorkerId) -> Result<()>;
    /// Workers whose last heartbeat is at or after `alive_since`.
    async fn list_workers(&self, alive_since: Timestamp) -> Result<Vec<WorkerInfo>>;
    /// Forgets workers silent since before `before`; returns how many.
    async fn prune_workers(&self, before: Timestamp) -> Result<u64>;
}

#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` unless the key exists; returns the value now stored. Lets every
    /// process of a cluster agree on a generated secret.
    async fn init_setting(&self, key: &str, value: &str) -> Result<String>;
    async fn put_setting(&self, key: &str, value: &str) -> Result<()>;
}

/// Sessions kept in the database: the fallback for the cache's sessions when Redis is
/// unreachable, and a durable copy that outlives a Redis restart.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts or replaces a session.
    async fn put_session(&self, session: &Session) -> Result<()>;
    /// The session, unless it expired before `now`.
    async fn get_session(&self, id: SessionId, now: Timestamp) -> Result<Option<Session>>;
    /// Removes a session; returns whether it existed.
    async fn delete_session(&self, id: SessionId) -> Result<bool>;
    /// The user's sessions that have not expired at `now`, oldest first.
    async fn list_sessions(&self, user: UserId, now: Timestamp) -> Result<Vec<Session>>;
    /// Same contract as `Cache::rotate_refresh`, atomic across processes.
    async fn rotate_refresh(
        &self,
        id: SessionId,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome>;
    /// Forgets sessions that expired before `before`; returns how many.
    async fn prune_sessions(&self, before: Timestamp) -> Result<u64>;
}

/// Most refresh-token hashes a session remembers for reuse detection.
pub const MAX_USED_HASHES: usize = 64;

/// Compares secrets' hashes in constant time.
fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The refresh-rotation rule every session backend applies: the current hash rotates;
/// the hash spent by the last rotation, presented again within `grace_ms` of it, repeats
/// that rotation's answer; any other previously used one (or that one later) means the
/// token family leaked (the caller revokes the session); anything else is invalid.
/// Mutates `session` only on rotation.
pub fn rotate_session(session: &mut Session, rotation: &Rotation<'_>) -> RefreshOutcome {
    let presented = rotation.presented_hash;
    if session.expires_at <= rotation.now {
        RefreshOutcome::Invalid
    } else if ct_eq(&session.refresh_hash, presented) {
        let used = std::mem::replace(&mut session.refresh_hash, rotation.new_hash.to_owned());
        session.used_hashes.push(used);
        if session.used_hashes.len() > MAX_USED_HASHES {
            session.used_hashes.remove(0);
        }
        session.sealed_next = rotation.sealed_next.to_owned();
        session.expires_at = rotation.new_expiry;
        session.last_refreshed_at = rotation.now;
        RefreshOutcome::Rotated(session.clone())
    } else if session
        .used_hashes
        .last()
        .is_some_and(|last| ct_eq(last, presented))
        && !session.sealed_next.is_empty()
        && rotation.now.since(session.last_refreshed_at) < rotation.grace_ms
    {
        RefreshOutcome::Repeated(session.clone())
    } else if session.used_hashes.iter().any(|h| ct_eq(h, presented)) {
        RefreshOutcome::Reused
    } else {
        RefreshOutcome::Invalid
    }
}

/// A connection pool's use, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// `primary`, `replica`, `writer` or `reader`.
    pub pool: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Storage for monitoring: metric rollups, alert rules and events, reports, task-log
/// queries and retention, and the full-text search index.
#[async_trait]
pub trait MonitoringStore: Send + Sync {
    /// Adds counter deltas and histogram bucket counts to the one-minute bucket starting
    /// at `bucket_start`. Every process adds its own; the stored value is their sum.
    async fn add_metric_points(
        &self,
        bucket_start: Timestamp,
        points: &[MetricPoint],
    ) -> Result<()>;
    /// Sets gauge samples of the one-minute bucket (the latest sample wins).
    async fn set_metric_gauges(
        &self,
        bucket_start: Timestamp,
        points: &[MetricPoint],
    ) -> Result<()>;
    /// Stored rows of the given metrics in `[from, to)`, oldest first.
    async fn metric_rows(&self, query: &MetricRowQuery) -> Result<Vec<MetricRow>>;
    /// Folds one-minute buckets that start before `before` into one-hour buckets (sums;
    /// the maximum for gauges) and deletes them. Returns the minute rows folded.
    async fn downsample_metrics(&self, before: Timestamp) -> Result<u64>;
    /// Deletes rows of `resolution_s` whose bucket starts before `before`.
    async fn prune_metrics(&self, resolution_s: u32, before: Timestamp) -> Result<u64>;

    async fn put_alert_rule(&self, rule: &AlertRule) -> Result<()>;
    async fn get_alert_rule(&self, id: Uuid) -> Result<Option<AlertRule>>;
    async fn list_alert_rules(&self) -> Result<Vec<AlertRule>>;
    async fn delete_alert_rule(&self, id: Uuid) -> Result<bool>;
    /// Records the evaluator's state of a rule without touching its definition.
    async fn save_alert_state(&self, id: Uuid, state: &AlertState) -> Result<()>;
    async fn insert_alert_event(&self, event: &AlertEvent) -> Result<()>;
    async fn list_alert_events(&self, query: &AlertEventQuery) -> Result<Vec<AlertEvent>>;
    /// Events whose webhook notification is due at `now`, oldest first.
    async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<AlertEvent>>;
    async fn record_notification(&self, update: &NotifyUpdate) -> Result<()>;
    async fn prune_alert_events(&self, before: Timestamp) -> Result<u64>;

    /// Per-agent figures of the tasks submitted in `[from, to)`.
    async fn agent_report(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AgentReportRow>>;

    /// A task's log lines, filtered.
    async fn query_task_logs(&self, query: &LogQuery) -> Result<Vec<TaskLogLine>>;
    /// Deletes the log lines and kept stream events of tasks created before `before`.
    async fn prune_task_logs(&self, before: Timestamp) -> Result<u64>;

    /// One pass of the search indexer: indexes up to `limit` tasks not indexed yet, and
    /// re-indexes up to `limit` tasks that finished since they were indexed (adding
    /// output, error and log lines). Returns how many documents were written.
    async fn index_tasks(&self, limit: u32) -> Result<u64>;

    /// The connection pools' use.
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Database round trips since the store was opened: transactions (begin and commit
    /// count as two), statements run outside a transaction, and the statements of the
    /// batched hot paths. Tests bound it per task.
    fn database_calls(&self) -> u64;
}

/// Who runs the cluster duties (lease reaper, delayed-task promotion, housekeeping):
/// exactly one process at a time, taken over by another when the holder dies.
#[async_trait]
pub trait Leadership: Send + Sync + 'static {
    /// Whether this process holds the duties now, acquiring them if they are free.
    /// Called every few seconds; a holder that lost its claim learns it here.
    async fn check(&self) -> bool;
    /// Gives the duties up (graceful shutdown), so another process takes over at once.
    async fn release(&self);
}

/// The only process there is (embedded storage): always the leader.
pub struct SoleLeader;

#[async_trait]
impl Leadership for SoleLeader {
    async fn check(&self) -> bool {
        true
    }

    async fn release(&self) {}
}

#[async_trait]
pub trait Store:
    TaskStore
    + StepStore
    + WaitStore
    + crate::schedule::ScheduleStore
    + crate::files::FileStore
    + crate::flow::RateLimiter
    + AgentStore
    + IdentityStore
    + WorkerStore
    + SettingsStore
    + SessionStore
    + MonitoringStore
    + crate::backup::BackupStore
    + crate::audit::AuditStore
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
}
