//! The worker runtime: runs built-in agent kinds inside a Switchyard process.
//!
//! It registers with the dispatcher as a consumer with a fixed number of slots,
//! executes each claimed task under its per-attempt timeout and cancellation, renews
//! its leases while it runs, and hands every outcome to the reporter.

pub mod kinds;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use switchyard_core::event::{BusMessage, EventBody};
use switchyard_core::store::{ClaimedTask, EventDraft, WorkerInfo};
use switchyard_core::task::{TaskError, codes};
use switchyard_core::{Result, TaskId, Timestamp, WorkerId};
use switchyard_engine::Engine;
use switchyard_engine::dispatch::{ConsumerConfig, Releaser, Serves};
use switchyard_engine::reporter::{AttemptOutcome, AttemptRef, AttemptResult, Reporter};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::kinds::{EventSink, HttpKind, TaskContext};

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub name: String,
    /// Tasks run at once by this process.
    pub slots: u32,
    /// How long shutdown waits for running tasks before cancelling them.
    pub drain_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            name: "builtin".into(),
            slots: 4096,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

struct Running {
    attempt: u32,
    cancel: CancellationToken,
}

struct Shared {
    engine: Arc<Engine>,
    http: HttpKind,
    running: DashMap<TaskId, Running>,
    releaser: Releaser,
    /// Fired when shutdown gives up waiting: unfinished attempts go back to the queue.
    abort: CancellationToken,
}

/// Runs until `shutdown` fires, then drains: takes nothing new, lets running tasks
/// finish (up to `drain_timeout`), cancels the rest, and leaves.
pub async fn run(
    engine: Arc<Engine>,
    config: RuntimeConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let worker_id = WorkerId::new();
    let mut consumer = engine.dispatcher.register(ConsumerConfig {
        worker_id,
        name: config.name.clone(),
        serves: Serves::BuiltinKinds,
        slots: config.slots,
    });
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        http: HttpKind::new(),
        running: DashMap::new(),
        releaser: consumer.releaser(),
        abort: CancellationToken::new(),
    });
    let started_at = Timestamp::now();
    let info = move |in_use: u32| WorkerInfo {
        id: worker_id,
        name: config.name.clone(),
        kind: "builtin".into(),
        agents: vec!["echo".into(), "sleep".into(), "fail".into(), "http".into()],
        slots: config.slots,
        slots_in_use: in_use,
        version: env!("CARGO_PKG_VERSION").into(),
        host: hostname(),
        started_at,
        heartbeat_at: Timestamp::now(),
    };
    engine.store.upsert_worker(&info(0)).await?;
    let stop_side = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat_loop(
        shared.clone(),
        worker_id,
        info.clone(),
        stop_side.clone(),
    ));
    let cancels = tokio::spawn(cancel_listener(
        shared.clone(),
        worker_id,
        engine.bus.subscribe(),
        stop_side.clone(),
    ));

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            batch = consumer.rx.recv() => match batch {
                Some(batch) => {
                    for task in batch {
                        spawn_task(shared.clone(), task);
                    }
                }
                None => break,
            },
        }
    }

    consumer.drain();
    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    while !shared.running.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.abort.cancel();
    while !shared.running.is_empty()
        && tokio::time::Instant::now() < deadline + Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_side.cancel();
    let _ = heartbeat.await;
    let _ = cancels.await;
    engine.store.remove_worker(worker_id).await?;
    drop(consumer);
    Ok(())
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
}

async fn heartbeat_loop(
    shared: Arc<Shared>,
    worker_id: WorkerId,
    info: impl Fn(u32) -> WorkerInfo,
    stop: CancellationToken,
) {
    let queue = &shared.engine.config.queue;
    let mut tick = tokio::time::interval(Duration::from_millis(queue.heartbeat_ms.max(10)));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let until = Timestamp::now().plus_ms(queue.lease_ms);
        if let Err(e) = shared.engine.store.extend_leases(worker_id, until).await {
            tracing::warn!(error = %e, "could not renew leases");
        }
        if let Err(e) = shared
            .engine
            .store
            .upsert_worker(&info(shared.running.len() as u32))
            .await
        {
            tracing::warn!(error = %e, "could not record the worker heartbeat");
        }
    }
}

async fn cancel_listener(
    shared: Arc<Shared>,
    worker_id: WorkerId,
    mut rx: broadcast::Receiver<Arc<BusMessage>>,
    stop: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            msg = rx.recv() => msg,
        };
        match msg {
            Ok(msg) => {
                if let BusMessage::Cancel {
                    task_id,
                    attempt,
                    worker_id: target,
                } = &*msg
                    && *target == worker_id
                    && let Some(r) = shared.running.get(task_id)
                    && r.attempt == *attempt
                {
                    r.cancel.cancel();
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct ReporterSink<'a> {
    reporter: &'a Reporter,
    attempt: &'a AttemptRef,
}

#[async_trait::async_trait]
impl EventSink for ReporterSink<'_> {
    async fn emit(&self, body: EventBody) {
        let draft = EventDraft {
            task_id: self.attempt.task_id,
            attempt: self.attempt.attempt,
            at: Timestamp::now(),
            body,
        };
        if let Err(e) = self.reporter.emit(draft).await {
            tracing::debug!(error = %e, "dropping a live event");
        }
    }
}

fn spawn_task(shared: Arc<Shared>, task: ClaimedTask) {
    let cancel = CancellationToken::new();
    shared.running.insert(
        task.id,
        Running {
            attempt: task.attempt,
            cancel: cancel.clone(),
        },
    );
    // The run → complete part of the task's trace (debug level: free when filtered out).
    let span = tracing::debug_span!(
        "task.run",
        task_id = %task.id,
        attempt = task.attempt,
        agent = %task.agent,
        trace_id = task.trace_id.as_deref().unwrap_or(""),
    );
    let run = async move {
        let attempt = AttemptRef::from(task);
        let outcome = execute(&shared, &attempt, cancel).await;
        let result = AttemptResult {
            attempt,
            outcome,
            ack: None,
        };
        let task_id = result.attempt.task_id;
        if let Err(e) = shared.engine.reporter.finish(result).await {
            tracing::error!(task = %task_id, error = %e, "could not hand in a result; the lease will expire");
        }
        shared.running.remove(&task_id);
        shared.releaser.release(1);
    };
    tokio::spawn(tracing::Instrument::instrument(run, span));
}

async fn execute(
    shared: &Shared,
    attempt: &AttemptRef,
    cancel: CancellationToken,
) -> AttemptOutcome {
    let entry = match shared.engine.agents.get(&attempt.agent).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return AttemptOutcome::Failed(TaskError::permanent(
                codes::AGENT_MISSING,
                format!("agent {:?} no longer exists", attempt.agent),
            ));
        }
        Err(e) => return AttemptOutcome::Failed(TaskError::retryable("internal", e.message)),
    };
    let spec = entry.spec();
    let sink = ReporterSink {
        reporter: &shared.engine.reporter,
        attempt,
    };
    let ctx = TaskContext {
        attempt,
        spec,
        cancel: cancel.clone(),
        events: &sink,
    };
    let timeout = Duration::from_millis(spec.timeout_ms);
    tokio::select! {
        result = kinds::execute(spec.kind, ctx, &shared.http) => match result {
            Ok(output) => AttemptOutcome::Succeeded(output),
            Err(error) => AttemptOutcome::Failed(error),
        },
        _ = tokio::time::sleep(timeout) => AttemptOutcome::Failed(TaskError::retryable(
            codes::TIMEOUT,
            format!("the attempt did not finish within {} ms", spec.timeout_ms),
        )),
        _ = cancel.cancelled() => AttemptOutcome::Cancelled(None),
        _ = shared.abort.cancelled() => AttemptOutcome::Failed(TaskError::retryable(
            codes::WORKER_LOST,
            "the worker shut down before the task finished",
        )),
    }
}
