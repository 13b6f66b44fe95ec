//! The worker runtime: runs built-in agent kinds inside a Switchyard process.
//!
//! It drives a [`WorkerSession`] with a fixed number of slots: executes each task
//! claimed for it under its per-attempt timeout and cancellation, heartbeats on a timer
//! of its own while it runs (the session renews the leases), and hands every outcome to
//! the session.

pub mod kinds;

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::event::EventBody;
use switchyard_core::store::AttemptRef;
use switchyard_core::store::{ClaimedTask, EventDraft};
use switchyard_core::task::{TaskError, codes};
use switchyard_core::{Result, Timestamp};
use switchyard_engine::Engine;
use switchyard_engine::completer::AttemptOutcome;
use switchyard_engine::dispatch::Serves;
use switchyard_engine::worker_session::{Cancels, WorkerProfile, WorkerSession};
use tokio_util::sync::CancellationToken;

use crate::kinds::{
    CommandKind, EventSink, HostEnvironment, HttpKind, Kinds, LlmKind, TaskContext,
};

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub name: String,
    /// Tasks run at once by this process.
    pub slots: u32,
    /// How long shutdown waits for running tasks before cancelling them.
    pub drain_timeout: Duration,
    /// What a `command` agent's `pass_env` copies from.
    pub environment: HostEnvironment,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            name: "builtin".into(),
            slots: 4096,
            drain_timeout: Duration::from_secs(30),
            environment: HostEnvironment::default(),
        }
    }
}

struct Shared {
    engine: Arc<Engine>,
    kinds: Kinds,
    session: WorkerSession,
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
    let (session, mut assignments) = WorkerSession::open(
        &engine,
        WorkerProfile {
            name: config.name.clone(),
            kind: "builtin".into(),
            serves: Serves::BuiltinKinds,
            agents: ["echo", "sleep", "fail", "http", "command", "llm"]
                .map(String::from)
                .to_vec(),
            slots: config.slots,
            version: env!("CARGO_PKG_VERSION").into(),
            host: hostname(),
        },
    )
    .await?;
    let heartbeat_every = Duration::from_millis(engine.config().queue.heartbeat_ms.max(10));
    let command = CommandKind::new(
        engine.config().agents.command_allowed(),
        Duration::from_millis(engine.config().queue.cancel_grace_ms),
        config.environment.clone(),
    );
    let llm = LlmKind::new(config.environment.clone(), engine.clone(), session.clone());
    let shared = Arc::new(Shared {
        engine,
        kinds: Kinds {
            http: HttpKind::new(),
            command,
            llm,
        },
        session: session.clone(),
        abort: CancellationToken::new(),
    });
    let stop_side = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat_loop(
        session.clone(),
        heartbeat_every,
        stop_side.clone(),
    ));
    let cancels = tokio::spawn(cancel_listener(session.cancels(), stop_side.clone()));

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            batch = assignments.next() => match batch {
                Some(batch) => {
                    for task in batch {
                        spawn_task(shared.clone(), task);
                    }
                }
                None => break,
            },
        }
    }

    assignments.drain();
    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    session.settle(deadline).await;
    shared.abort.cancel();
    session.settle(deadline + Duration::from_secs(2)).await;
    stop_side.cancel();
    let _ = heartbeat.await;
    let _ = cancels.await;
    session.deregister(assignments).await
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
}

async fn heartbeat_loop(session: WorkerSession, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        session.heartbeat().await;
    }
}

/// Keeps the session's cancel routing going: each request fires its attempt's token.
async fn cancel_listener(mut cancels: Cancels, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            request = cancels.next() => if request.is_none() {
                return;
            },
        }
    }
}

struct SessionSink<'a> {
    session: &'a WorkerSession,
    attempt: &'a AttemptRef,
}

#[async_trait::async_trait]
impl EventSink for SessionSink<'_> {
    async fn emit(&self, body: EventBody) {
        let draft = EventDraft {
            task_id: self.attempt.task_id,
            attempt: self.attempt.attempt,
            at: Timestamp::now(),
            body,
        };
        if let Err(e) = self.session.emit(draft).await {
            tracing::debug!(error = %e, "dropping a live event");
        }
    }
}

fn spawn_task(shared: Arc<Shared>, task: ClaimedTask) {
    // The run → complete part of the task's trace (debug level: free when filtered out).
    let span = tracing::debug_span!(
        "task.run",
        task_id = %task.id,
        attempt = task.attempt,
        agent = %task.agent,
        trace_id = task.trace_id.as_deref().unwrap_or(""),
    );
    let attempt = Arc::new(AttemptRef::from(task));
    let cancel = shared.session.hold(attempt.clone());
    let run = async move {
        let outcome = execute(&shared, &attempt, cancel).await;
        let (task_id, number) = (attempt.task_id, attempt.attempt);
        // The session hands the attempt itself to the completer: no copy of the input.
        drop(attempt);
        if let Err(e) = shared.session.finish(task_id, number, outcome, None).await {
            tracing::error!(task = %task_id, error = %e, "could not hand in a result; the lease will expire");
        }
    };
    tokio::spawn(tracing::Instrument::instrument(run, span));
}

async fn execute(
    shared: &Shared,
    attempt: &AttemptRef,
    cancel: CancellationToken,
) -> AttemptOutcome {
    let entry = match shared.engine.agents().get(&attempt.agent).await {
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
    let sink = SessionSink {
        session: &shared.session,
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
        result = kinds::execute(spec.kind, ctx, &shared.kinds) => match result {
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
