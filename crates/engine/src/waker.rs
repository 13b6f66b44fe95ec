//! The waker: queues waiting tasks again when their wait is over.
//!
//! Sleeps and signal-wait timeouts are due at a time: the waker resumes them when it has
//! passed (checked every [`TICK`], against the earliest deadline it knows of, which every
//! server refreshes from the database every [`REFRESH`]). Joins are over when the last
//! joined child finishes: the completer and cancellations nudge the waker with the
//! parents of the tasks they finish, and a sweep of every waiting join every [`SWEEP`]
//! catches what a nudge missed (a parent that began its wait as its last child finished,
//! a server that died in between). Signals wake their task themselves (see
//! [`crate::tasks::TaskService::signal`]). Every server runs a waker; resuming is one
//! transaction per task that only a `waiting` task passes, so two wakers never resume
//! a task twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use switchyard_core::cache::EventBus;
use switchyard_core::store::Store;
use switchyard_core::{TaskId, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::announcer::announce_resumed;

/// How often due waits are looked for.
pub const TICK: Duration = Duration::from_millis(100);
/// How often the earliest deadline is read again from the database.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How often every waiting join is checked.
pub const SWEEP: Duration = Duration::from_secs(5);
/// Most waits resumed per round.
const BATCH: u32 = 500;

/// The handle the rest of the engine tells about waits.
#[derive(Clone)]
pub struct Waker {
    nudges: mpsc::Sender<TaskId>,
    /// The earliest deadline known (ms since the epoch; `i64::MAX`: none).
    next: Arc<AtomicI64>,
}

pub struct WakerLoop {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    nudges: mpsc::Receiver<TaskId>,
    next: Arc<AtomicI64>,
}

impl Waker {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>) -> (Waker, WakerLoop) {
        let (tx, rx) = mpsc::channel(65_536);
        let next = Arc::new(AtomicI64::new(0));
        (
            Waker {
                nudges: tx,
                next: next.clone(),
            },
            WakerLoop {
                store,
                bus,
                nudges: rx,
                next,
            },
        )
    }

    /// A task began a wait that is due at `until`.
    pub fn due_at(&self, until: Timestamp) {
        self.next.fetch_min(until.millis(), Ordering::Relaxed);
    }

    /// A child task of `parent` finished: its join may be over.
    pub fn child_finished(&self, parent: TaskId) {
        // A full channel drops the nudge: the sweep catches it.
        let _ = self.nudges.try_send(parent);
    }
}

impl WakerLoop {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refreshed = tokio::time::Instant::now() - REFRESH;
        let mut swept = tokio::time::Instant::now();
        let mut parents = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                n = self.nudges.recv_many(&mut parents, 1_024) => {
                    if n == 0 {
                        return;
                    }
                }
            }
            if !parents.is_empty() {
                let unique: BTreeSet<TaskId> = parents.drain(..).collect();
                let unique: Vec<TaskId> = unique.into_iter().collect();
                self.resume_joins(Some(&unique)).await;
            }
            if swept.elapsed() >= SWEEP {
                swept = tokio::time::Instant::now();
                self.resume_joins(None).await;
            }
            if refreshed.elapsed() >= REFRESH {
                refreshed = tokio::time::Instant::now();
                match self.store.next_wait_deadline().await {
                    Ok(next) => self
                        .next
                        .store(next.map_or(i64::MAX, |t| t.millis()), Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "could not read the next wait deadline"),
                }
            }
            if self.next.load(Ordering::Relaxed) <= Timestamp::now().millis() {
                self.resume_due().await;
            }
        }
    }

    async fn resume_due(&self) {
        loop {
            let now = Timestamp::now();
            // Forget the deadline first: one set meanwhile is kept, one passed is reread.
            self.next.store(i64::MAX, Ordering::Relaxed);
            match self.store.resume_due(now, BATCH).await {
                Ok(resumed) => {
                    announce_resumed(&self.bus, None, &resumed, now).await;
                    if resumed.len() < BATCH as usize {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "resuming waits failed");
                    self.next.store(0, Ordering::Relaxed);
                    return;
                }
            }
        }
        match self.store.next_wait_deadline().await {
            Ok(Some(next)) => {
                self.next.fetch_min(next.millis(), Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not read the next wait deadline");
                self.next.store(0, Ordering::Relaxed);
            }
        }
    }

    async fn resume_joins(&self, parents: Option<&[TaskId]>) {
        let now = Timestamp::now();
        match self.store.resume_joined(parents, now).await {
            Ok(resumed) => announce_resumed(&self.bus, None, &resumed, now).await,
            Err(e) => tracing::warn!(error = %e, "resuming joins failed"),
        }
    }
}
