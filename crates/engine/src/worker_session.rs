//! One worker's session with the engine, driven by both kinds of worker: the built-in
//! runtime (`crates/worker`, attempts run in-process) and the remote-worker gateway
//! (`/api/v1/workers/ws`, attempts run at the other end of a WebSocket).
//!
//! The session registers the worker as a dispatcher consumer and records it in the
//! workers registry; it keeps the table of attempts the worker holds, renews their leases
//! and the worker record on heartbeat, routes cancel requests to the attempts they
//! concern, hands outcomes to the completer and frees their slots, fails what a lost worker
//! held as `worker_lost`, and deregisters. What differs stays with the driver: the
//! built-in runtime executes attempts (kinds, timeouts, abort on shutdown) on a heartbeat
//! timer of its own; the gateway speaks the protocol and heartbeats when its worker does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use parking_lot::Mutex;
use serde_json::Value;
use switchyard_core::event::{BusMessage, EventBody, TaskEvent};
use switchyard_core::step::{StepDraft, StepOutcome, StepRecord, check_step_name, refusals};
use switchyard_core::store::{ClaimedTask, EventDraft, WorkerInfo};
use switchyard_core::task::{TaskError, codes};
use switchyard_core::wait::{Wait, WaitBegun, codes as wait_codes};
use switchyard_core::{ErrorCode, Result, TaskId, Timestamp, WorkerId};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::completer::{AttemptOutcome, AttemptResult};
use crate::dispatch::{Consumer, ConsumerConfig, Releaser, Serves};
use crate::tasks::SubmitRequest;
use switchyard_core::store::AttemptRef;

/// Who the worker is: what it serves, with how many slots, and how the workers view
/// shows it.
#[derive(Clone, Debug)]
pub struct WorkerProfile {
    pub name: String,
    /// `builtin` (a process running built-in kinds) or `remote` (an SDK worker).
    pub kind: String,
    pub serves: Serves,
    /// The agents (or kinds) listed in the workers view.
    pub agents: Vec<String>,
    pub slots: u32,
    pub version: String,
    pub host: Option<String>,
}

/// A worker's session: cheap to clone into the tasks its driver spawns (attempt runners,
/// a heartbeat timer). The tasks claimed for the worker arrive on the [`Assignments`]
/// that [`WorkerSession::open`] returns with it.
#[derive(Clone)]
pub struct WorkerSession {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    worker_id: WorkerId,
    name: String,
    /// The worker's registry record and when it was last written.
    record: Mutex<Record>,
    /// The attempts this worker holds, by task.
    in_flight: DashMap<TaskId, Held>,
    slots: Releaser,
}

struct Record {
    info: WorkerInfo,
    written: Instant,
}

struct Held {
    attempt: u32,
    /// Taken while the attempt's outcome is being handed in: from then on it is no longer
    /// held, but it still counts as in flight until the completer has it.
    detail: Option<Arc<AttemptRef>>,
    cancel: CancellationToken,
}

/// The receiving end of the worker's dispatcher consumer: the batches claimed for it.
/// Handed back to [`WorkerSession::deregister`] or [`WorkerSession::lost`] at the end.
pub struct Assignments {
    consumer: Consumer,
}

impl Assignments {
    /// The next batch claimed for the worker; `None` once the dispatcher is gone.
    pub async fn next(&mut self) -> Option<Vec<ClaimedTask>> {
        self.consumer.rx.recv().await
    }

    /// Take no new work (graceful drain); what is in flight continues.
    pub fn drain(&self) {
        self.consumer.drain();
    }
}

/// What became of an outcome handed to [`WorkerSession::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handover {
    /// Queued for the completer; the slot is free again.
    Handed,
    /// The worker does not hold that attempt (any more): nothing was recorded.
    NotHeld,
}

/// A durable step the engine would not record: a code of
/// [`switchyard_core::step::refusals`] and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRefusal {
    pub code: &'static str,
    pub message: String,
}

/// How a durable wait a held attempt asked for stands.
#[derive(Clone, Debug, PartialEq)]
pub enum WaitAnswer {
    /// Already over: go on with this result.
    Ready(Value),
    /// The run is over: the task waits, the attempt is no longer held, its slot is free.
    Suspended,
    /// The signal wait timed out (in an earlier run).
    TimedOut,
}

/// A refusal of a step, a wait or a spawn, as the session's methods answer it.
fn refuse<T>(code: &'static str, message: String) -> Result<std::result::Result<T, StepRefusal>> {
    Ok(Err(StepRefusal { code, message }))
}

/// A request to stop an attempt the worker holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelRequest {
    pub task_id: TaskId,
    pub attempt: u32,
}

/// The cancel requests that concern one worker's attempts, from the bus.
pub struct Cancels {
    rx: broadcast::Receiver<Arc<BusMessage>>,
    session: WorkerSession,
}

impl Cancels {
    /// The next cancel request for an attempt the worker holds, once its cancel token
    /// (see [`WorkerSession::hold`]) has fired; `None` once the bus is closed. Cancel-safe.
    pub async fn next(&mut self) -> Option<CancelRequest> {
        loop {
            match self.rx.recv().await {
                Ok(msg) => {
                    if let BusMessage::Cancel {
                        task_id,
                        attempt,
                        worker_id,
                    } = &*msg
                        && *worker_id == self.session.inner.worker_id
                        && let Some(held) = self.session.inner.in_flight.get(task_id)
                        && held.attempt == *attempt
                    {
                        held.cancel.cancel();
                        return Some(CancelRequest {
                            task_id: *task_id,
                            attempt: *attempt,
                        });
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl WorkerSession {
    /// Registers the worker as a dispatcher consumer and records it in the registry.
    pub async fn open(
        engine: &Arc<Engine>,
        profile: WorkerProfile,
    ) -> Result<(WorkerSession, Assignments)> {
        let worker_id = WorkerId::new();
        let consumer = engine.dispatcher.register(ConsumerConfig {
            worker_id,
            name: profile.name.clone(),
            serves: profile.serves,
            slots: profile.slots,
        });
        let now = Timestamp::now();
        let info = WorkerInfo {
            id: worker_id,
            name: profile.name,
            kind: profile.kind,
            agents: profile.agents,
            slots: profile.slots,
            slots_in_use: 0,
            version: profile.version,
            host: profile.host,
            started_at: now,
            heartbeat_at: now,
        };
        engine.store.upsert_worker(&info).await?;
        let session = WorkerSession {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                worker_id,
                name: info.name.clone(),
                record: Mutex::new(Record {
                    info,
                    written: Instant::now(),
                }),
                in_flight: DashMap::new(),
                slots: consumer.releaser(),
            }),
        };
        Ok((session, Assignments { consumer }))
    }

    /// The identity the worker's leases are taken under.
    pub fn worker_id(&self) -> WorkerId {
        self.inner.worker_id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The worker now holds `attempt`. Returns its cancel token, fired when a cancel
    /// request for it arrives on [`Cancels`].
    pub fn hold(&self, attempt: Arc<AttemptRef>) -> CancellationToken {
        let cancel = CancellationToken::new();
        self.inner.in_flight.insert(
            attempt.task_id,
            Held {
                attempt: attempt.attempt,
                detail: Some(attempt),
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    /// Whether the worker holds this attempt (and has not handed in its outcome).
    pub fn holds(&self, task_id: TaskId, attempt: u32) -> bool {
        self.inner
            .in_flight
            .get(&task_id)
            .is_some_and(|h| h.attempt == attempt && h.detail.is_some())
    }

    /// Attempts in flight, including those whose outcome is being handed in.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.len()
    }

    /// Waits until nothing is in flight or `deadline` passes; true if nothing is.
    pub async fn settle(&self, deadline: tokio::time::Instant) -> bool {
        while !self.inner.in_flight.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.inner.in_flight.is_empty()
    }

    /// The cancel requests for this worker's attempts, from now on.
    pub fn cancels(&self) -> Cancels {
        Cancels {
            rx: self.inner.engine.bus.subscribe(),
            session: self.clone(),
        }
    }

    /// The worker is alive: renews the leases of what it holds and, at most once per
    /// heartbeat interval, its registry record.
    pub async fn heartbeat(&self) {
        let engine = &self.inner.engine;
        let queue = &engine.config.queue;
        let until = Timestamp::now().plus_ms(queue.lease_ms);
        if let Err(e) = engine
            .store
            .extend_leases(self.inner.worker_id, until)
            .await
        {
            tracing::warn!(error = %e, worker = %self.inner.name, "could not extend leases");
        }
        // The worker registry needs no more than one write per heartbeat interval.
        let interval = Duration::from_millis(queue.heartbeat_ms);
        let due = {
            let mut record = self.inner.record.lock();
            (record.written.elapsed() >= interval / 2).then(|| {
                record.written = Instant::now();
                record.info.heartbeat_at = Timestamp::now();
                record.info.slots_in_use = self.inner.in_flight.len() as u32;
                record.info.clone()
            })
        };
        if let Some(info) = due
            && let Err(e) = engine.store.upsert_worker(&info).await
        {
            tracing::warn!(error = %e, worker = %self.inner.name, "could not record a worker heartbeat");
        }
    }

    /// Hands in a live event (log, progress, partial output) of a held attempt.
    pub async fn emit(&self, draft: EventDraft) -> Result<()> {
        self.inner.engine.completer.emit(draft).await
    }

    /// The results of the durable steps that succeeded in earlier runs of `task`, by name,
    /// to send with its assignment. A first attempt has none, and costs no query.
    pub async fn memoized_steps(&self, task: &ClaimedTask) -> Result<Vec<(String, Value)>> {
        self.steps_before(task.id, task.attempt).await
    }

    /// The results of the durable steps that succeeded in earlier runs of the task of
    /// `attempt`, by name, for a worker that reads them as it runs (the built-in
    /// runtime's `llm` kind). A first attempt has none, and costs no query.
    pub async fn steps_before(
        &self,
        task_id: TaskId,
        attempt: u32,
    ) -> Result<Vec<(String, Value)>> {
        if attempt <= 1 {
            // As `ClaimedTask::ran_before`.
            return Ok(Vec::new());
        }
        self.inner.engine.store.succeeded_steps(task_id).await
    }

    /// Records the outcome of a durable step of a held attempt, then announces it as a
    /// `step_finished` event. `Ok(Err(_))` is a refusal the worker is told about (the
    /// attempt no longer holds its lease, a limit, a bad name); `Err` a storage failure.
    pub async fn record_step(
        &self,
        draft: StepDraft,
    ) -> Result<std::result::Result<(), StepRefusal>> {
        let queue = &self.inner.engine.config.queue;
        if let Err(e) = check_step_name(&draft.name) {
            return refuse(refusals::INVALID_STEP, e.message);
        }
        if !self.holds(draft.task_id, draft.attempt) {
            return refuse(
                refusals::LEASE_LOST,
                "the attempt no longer holds its lease".into(),
            );
        }
        if let StepOutcome::Succeeded(output) = &draft.outcome {
            let bytes = serde_json::to_vec(output).map_or(usize::MAX, |v| v.len());
            if bytes > queue.max_step_output_bytes {
                return refuse(
                    refusals::OUTPUT_TOO_LARGE,
                    format!(
                        "step {:?} returned {bytes} bytes of JSON; the most is {} (queue.max_step_output_bytes)",
                        draft.name, queue.max_step_output_bytes
                    ),
                );
            }
        }
        let store = &self.inner.engine.store;
        match store.record_step(&draft, queue.max_steps_per_task).await? {
            StepRecord::Recorded => {}
            StepRecord::Kept => return Ok(Ok(())),
            StepRecord::LeaseLost => {
                return refuse(
                    refusals::LEASE_LOST,
                    "the task is no longer running this attempt".into(),
                );
            }
            StepRecord::TooMany => {
                return refuse(
                    refusals::TOO_MANY_STEPS,
                    format!(
                        "the task already has {} steps, the most allowed (queue.max_steps_per_task)",
                        queue.max_steps_per_task
                    ),
                );
            }
        }
        let event = EventDraft {
            task_id: draft.task_id,
            attempt: draft.attempt,
            at: draft.finished_at,
            body: EventBody::step_finished(draft.to_step()),
        };
        self.emit(event).await?;
        Ok(Ok(()))
    }

    /// Begins a durable wait of a held attempt (see [`switchyard_core::wait`]). When the
    /// wait is not over yet, the attempt ends: the session forgets it, frees its slot and
    /// announces the task's `waiting` event.
    pub async fn wait(
        &self,
        task_id: TaskId,
        attempt: u32,
        wait: Wait,
    ) -> Result<std::result::Result<WaitAnswer, StepRefusal>> {
        let engine = &self.inner.engine;
        if let Err(e) = wait.check() {
            return refuse(wait_codes::INVALID_WAIT, e.message);
        }
        if !self.holds(task_id, attempt) {
            return refuse(
                refusals::LEASE_LOST,
                "the attempt no longer holds its lease".into(),
            );
        }
        let now = Timestamp::now();
        let max_steps = engine.config.queue.max_steps_per_task;
        let begun = engine
            .store
            .begin_wait(task_id, attempt, &wait, now, max_steps)
            .await?;
        match begun {
            WaitBegun::Ready { step, recorded } => {
                let output = step.output.clone().unwrap_or(Value::Null);
                if recorded {
                    self.emit(EventDraft {
                        task_id,
                        attempt,
                        at: now,
                        body: EventBody::step_finished(step),
                    })
                    .await?;
                }
                Ok(Ok(WaitAnswer::Ready(output)))
            }
            WaitBegun::TimedOut => Ok(Ok(WaitAnswer::TimedOut)),
            WaitBegun::Suspended { seq } => {
                let detail = self
                    .inner
                    .in_flight
                    .remove_if(&task_id, |_, h| h.attempt == attempt)
                    .and_then(|(_, h)| h.detail);
                self.inner.slots.release(1);
                if let Some(until) = wait.until {
                    engine.waker.due_at(until);
                }
                if let Some(detail) = detail {
                    let limited = engine
                        .agents
                        .get(&detail.agent)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|e| e.spec().concurrency.is_some());
                    let event = TaskEvent::waiting(&detail, wait, seq, now);
                    engine
                        .bus
                        .send(BusMessage::Tasks {
                            events: vec![Arc::new(event)],
                        })
                        .await;
                    if limited {
                        engine
                            .bus
                            .send(BusMessage::Wake {
                                agents: vec![detail.agent.clone()],
                            })
                            .await;
                    }
                }
                Ok(Ok(WaitAnswer::Suspended))
            }
            WaitBegun::LeaseLost => refuse(
                refusals::LEASE_LOST,
                "the task is no longer running this attempt".into(),
            ),
            WaitBegun::NotAChild(id) => refuse(
                wait_codes::INVALID_WAIT,
                format!("task {id} is not a child task of task {task_id}"),
            ),
            WaitBegun::TooManySteps => refuse(
                refusals::TOO_MANY_STEPS,
                format!(
                    "the task already has {max_steps} steps, the most allowed (queue.max_steps_per_task)"
                ),
            ),
        }
    }

    /// Creates a child task of a held attempt's task, once per step `name` (a later run
    /// spawning under the same name gets the same child), recorded as a succeeded step
    /// whose output is the child's id.
    pub async fn spawn(
        &self,
        task_id: TaskId,
        attempt: u32,
        name: String,
        req: SubmitRequest,
    ) -> Result<std::result::Result<TaskId, StepRefusal>> {
        let engine = &self.inner.engine;
        if let Err(e) = check_step_name(&name) {
            return refuse(refusals::INVALID_STEP, e.message);
        }
        let held = self
            .inner
            .in_flight
            .get(&task_id)
            .filter(|h| h.attempt == attempt)
            .and_then(|h| h.detail.clone());
        let Some(parent) = held else {
            return refuse(
                refusals::LEASE_LOST,
                "the attempt no longer holds its lease".into(),
            );
        };
        if let Some(step) = engine.store.get_step(task_id, &name).await?
            && let Some(id) = step.output.as_ref().and_then(|v| v.as_str())
            && let Ok(id) = id.parse::<TaskId>()
        {
            return Ok(Ok(id));
        }
        let started_at = Timestamp::now();
        let child = match engine.tasks.spawn_child(&parent, &name, req).await {
            Ok(id) => id,
            Err(e) if e.is_internal() || e.code == ErrorCode::Unavailable => return Err(e),
            Err(e) => {
                let code = match e.code {
                    ErrorCode::InvalidState => wait_codes::TOO_MANY_CHILDREN,
                    other => other.as_str(),
                };
                return refuse(code, e.message);
            }
        };
        let draft = StepDraft {
            task_id,
            attempt,
            name,
            outcome: StepOutcome::Succeeded(Value::String(child.to_string())),
            started_at,
            finished_at: Timestamp::now(),
        };
        Ok(self.record_step(draft).await?.map(|()| child))
    }

    /// Hands the outcome of a held attempt to the completer, frees its slot and forgets it.
    /// `ack` is told whether the result counted (false: the lease was lost meanwhile). An
    /// attempt the worker does not hold is refused ([`Handover::NotHeld`]); an error means
    /// the completion path is shut down (the attempt's lease will expire).
    pub async fn finish(
        &self,
        task_id: TaskId,
        attempt: u32,
        outcome: AttemptOutcome,
        ack: Option<oneshot::Sender<bool>>,
    ) -> Result<Handover> {
        let detail = self
            .inner
            .in_flight
            .get_mut(&task_id)
            .filter(|h| h.attempt == attempt)
            .and_then(|mut h| h.detail.take());
        let Some(detail) = detail else {
            return Ok(Handover::NotHeld);
        };
        let result = AttemptResult {
            attempt: Arc::unwrap_or_clone(detail),
            outcome,
            ack,
        };
        let handed = self.inner.engine.completer.finish(result).await;
        self.inner
            .in_flight
            .remove_if(&task_id, |_, h| h.attempt == attempt && h.detail.is_none());
        self.inner.slots.release(1);
        handed.map(|()| Handover::Handed)
    }

    /// The worker is gone: everything it held, and what was claimed for it but not yet
    /// assigned, goes back to the queue as `worker_lost` (retried per policy); then it
    /// deregisters.
    pub async fn lost(self, mut assignments: Assignments) -> Result<()> {
        let completer = &self.inner.engine.completer;
        let tasks: Vec<TaskId> = self.inner.in_flight.iter().map(|h| *h.key()).collect();
        let held: Vec<Arc<AttemptRef>> = tasks
            .iter()
            .filter_map(|id| self.inner.in_flight.remove(id))
            .filter_map(|(_, h)| h.detail)
            .collect();
        if !held.is_empty() {
            tracing::warn!(worker = %self.inner.name, tasks = held.len(), "remote worker disconnected with tasks in flight");
        }
        for detail in held {
            let result = AttemptResult {
                attempt: Arc::unwrap_or_clone(detail),
                outcome: AttemptOutcome::Failed(TaskError::retryable(
                    codes::WORKER_LOST,
                    format!(
                        "the worker {:?} disconnected during the attempt",
                        self.inner.name
                    ),
                )),
                ack: None,
            };
            if let Err(e) = completer.finish(result).await {
                tracing::error!(error = %e, "could not requeue a lost task; its lease will expire");
            }
        }
        while let Ok(batch) = assignments.consumer.rx.try_recv() {
            for task in batch {
                let result = AttemptResult {
                    attempt: AttemptRef::from(task),
                    outcome: AttemptOutcome::Failed(TaskError::retryable(
                        codes::WORKER_LOST,
                        "the worker disconnected",
                    )),
                    ack: None,
                };
                let _ = completer.finish(result).await;
            }
        }
        self.deregister(assignments).await
    }

    /// Removes the worker from the registry and the dispatcher.
    pub async fn deregister(self, assignments: Assignments) -> Result<()> {
        let removed = self
            .inner
            .engine
            .store
            .remove_worker(self.inner.worker_id)
            .await;
        drop(assignments);
        removed
    }
}

#[cfg(test)]
pub(crate) mod tests;
