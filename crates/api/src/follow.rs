//! Following task events, shared by SSE and the WebSocket gateway.
//!
//! A follower first gets what it missed (or, when new, the task's current state), then
//! live events. Duplicates are dropped by sequence number, so a reconnect with `since`
//! sees every event once and in order, as far back as the replay window reaches.

use std::collections::VecDeque;

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

/// One task's events as its follower receives them: the backlog, then live events, in
/// sequence order without duplicates, until the final event.
///
/// Every [`RESYNC`] it also checks the stored task: an event that never reached this
/// server (a bus message lost while a connection to Redis was being re-established) is
/// delivered from the store, so a follower never waits forever for a final event.
pub struct TaskFollower {
    state: AppState,
    task_id: TaskId,
    sub: Subscription,
    shutdown: CancellationToken,
    pending: VecDeque<SharedEvent>,
    /// The newest seq delivered.
    last: u64,
    /// No event delivered yet: the first of a new follower is the current state, whatever
    /// its seq.
    first: bool,
    resync: tokio::time::Interval,
    ended: bool,
}

impl TaskFollower {
    /// Follows `task_id` on `sub` (subscribed before `backlog` was read), from `since`.
    pub fn new(
        state: AppState,
        task_id: TaskId,
        backlog: Vec<SharedEvent>,
        since: Option<u64>,
        sub: Subscription,
    ) -> Self {
        let shutdown = state.shutdown.clone();
        TaskFollower {
            state,
            task_id,
            sub,
            shutdown,
            pending: backlog.into(),
            last: since.unwrap_or(0),
            first: since.is_none(),
            resync: tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC),
            ended: false,
        }
    }

    /// The next event to deliver, or why there is none: [`End::Final`] once the final
    /// event has been delivered.
    pub async fn next(&mut self) -> Result<SharedEvent, End> {
        loop {
            if self.ended {
                return Err(End::Final);
            }
            // Events ready now are taken without setting up the wait below (the busy
            // path: one event after another).
            let ready = match self.pending.pop_front() {
                Some(e) => Some(e),
                None if self.shutdown.is_cancelled() => return Err(End::Shutdown),
                None => self.sub.rx.try_recv().ok(),
            };
            let e = match ready {
                Some(e) => e,
                None => tokio::select! {
                    _ = self.shutdown.cancelled() => return Err(End::Shutdown),
                    e = self.sub.rx.recv() => match e {
                        Some(e) => e,
                        None => return Err(if self.sub.lagged() { End::Lagged } else { End::Gone }),
                    },
                    _ = self.resync.tick() => {
                        let tasks = self.state.engine.tasks();
                        if let Ok(Some(task)) = tasks.current(self.task_id).await
                            && task.seq > self.last
                        {
                            self.pending.extend(tasks.backlog(&task, Some(self.last)).await);
                        }
                        continue;
                    }
                },
            };
            if e.seq <= self.last && !self.first {
                continue;
            }
            self.first = false;
            self.last = self.last.max(e.seq);
            self.ended = e.is_final();
            return Ok(e);
        }
    }
}

/// Delivers a task follower's events to `sink` until the final event.
pub async fn pump_task(mut follower: TaskFollower, sink: &mut impl EventSink) -> End {
    loop {
        match follower.next().await {
            Ok(e) => {
                if !sink.emit(&e).await {
                    return End::Gone;
                }
            }
            Err(end) => return end,
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
