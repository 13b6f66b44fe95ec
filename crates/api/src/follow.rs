//! Following task events, shared by SSE and the WebSocket gateway.
//!
//! A follower first gets what it missed (or, when new, the task's current state), then
//! live events. Duplicates are dropped by sequence number, so a reconnect with `since`
//! sees every event once and in order, as far back as the replay window reaches.

use switchyard_core::TaskId;
use switchyard_core::event::TaskEvent;
use switchyard_engine::events::{SharedEvent, Subscription};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Where a follower delivers events; `emit` returns false when the consumer is gone.
pub trait EventSink: Send {
    fn emit(&mut self, event: &TaskEvent) -> impl std::future::Future<Output = bool> + Send;
}

/// Why a follower stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The task reached its final event (task followers only).
    Final,
    /// The hub dropped the subscription: the consumer fell behind.
    Lagged,
    /// The consumer went away.
    Gone,
    Shutdown,
}

/// Delivers one task's backlog then its live events, in sequence order without
/// duplicates, until the final event.
///
/// Every [`RESYNC`] it also checks the stored task: an event that never reached this
/// server (a bus message lost while a connection to Redis was being re-established) is
/// delivered from the store, so a follower never waits forever for a final event.
pub async fn pump_task(
    state: &AppState,
    task_id: TaskId,
    backlog: Vec<SharedEvent>,
    since: Option<u64>,
    sub: &mut Subscription,
    shutdown: &CancellationToken,
    sink: &mut impl EventSink,
) -> End {
    let mut last = since.unwrap_or(0);
    let mut pending: std::collections::VecDeque<SharedEvent> = backlog.into();
    let mut first = since.is_none();
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
    loop {
        let e = match pending.pop_front() {
            Some(e) => e,
            None => tokio::select! {
                _ = shutdown.cancelled() => return End::Shutdown,
                e = sub.rx.recv() => match e {
                    Some(e) => e,
                    None => return if sub.lagged() { End::Lagged } else { End::Gone },
                },
                _ = resync.tick() => {
                    if let Ok(Some(task)) = state.engine.tasks().current(task_id).await
                        && task.seq > last
                    {
                        pending.extend(state.engine.tasks().backlog(&task, Some(last)).await);
                    }
                    continue;
                }
            },
        };
        // The first event of a new follower is the current state, whatever its seq.
        if e.seq <= last && !first {
            continue;
        }
        first = false;
        last = last.max(e.seq);
        if !sink.emit(&e).await {
            return End::Gone;
        }
        if e.is_final() {
            return End::Final;
        }
    }
}

/// How often a task follower compares its position with the stored task.
pub const RESYNC: std::time::Duration = std::time::Duration::from_secs(10);

/// Delivers the backlog then every live event of a many-task subscription.
pub async fn pump_many(
    backlog: Vec<SharedEvent>,
    sub: &mut Subscription,
    shutdown: &CancellationToken,
    sink: &mut impl EventSink,
) -> End {
    for e in backlog {
        if !sink.emit(&e).await {
            return End::Gone;
        }
    }
    loop {
        let e = tokio::select! {
            _ = shutdown.cancelled() => return End::Shutdown,
            e = sub.rx.recv() => match e {
                Some(e) => e,
                None => return if sub.lagged() { End::Lagged } else { End::Gone },
            },
        };
        if !sink.emit(&e).await {
            return End::Gone;
        }
    }
}
