//! Stores numbered live events behind the completer, in the order they were numbered,
//! and asks the store for blocks of event numbers ahead of need ([`super::numbering`]).
//!
//! One task does both, so that the completer's loop never waits for a write: it numbers
//! and publishes events, hands them here, and waits only before recording results (a
//! task's final event is stored after all its live events). Followers do not wait for
//! the write either, so writes are paced: one every [`PACE`] at most, each taking all
//! that queued meanwhile. A commit costs about one page per task written, whatever the
//! number of its events, so fewer, larger writes cost the database less. Asks for
//! numbers do not wait for the pace: an attempt whose renewal came late would ask for
//! itself, and wait.

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::store::{NumberAsk, NumberBlock, NumberedEvent, Store};
use switchyard_core::{ErrorCode, Result};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::retry_unavailable;

/// Jobs taken at once; their events are stored in one transaction.
const MAX_JOBS: usize = 1_024;
/// Jobs waiting: past this the completer waits for the database, and so do the workers
/// that hand in events, as when it stored them itself.
const QUEUED_JOBS: usize = 4_096;
/// The shortest time between the starts of two writes, unless the queue is behind or
/// someone waits for the events to be stored.
pub(crate) const PACE: Duration = Duration::from_millis(50);

pub(crate) struct EventWriter {
    jobs: mpsc::Sender<Job>,
    asks: mpsc::UnboundedSender<Vec<NumberAsk>>,
    grants: mpsc::UnboundedReceiver<Grant>,
    /// Batches of events handed in, and (from the task) stored.
    sent: u64,
    stored: watch::Receiver<u64>,
    /// Tells the task not to wait out its pace.
    hurry: Arc<Notify>,
    /// Room for events published and not yet stored (see [`Self::room`]).
    room: Arc<Semaphore>,
    max_unstored: u32,
}

/// The answer to blocks asked for ahead.
pub(crate) struct Grant {
    pub asked: Vec<NumberAsk>,
    pub blocks: Result<Vec<NumberBlock>>,
}

/// Events to store, with the room they take until they are.
struct Job(Vec<NumberedEvent>, OwnedSemaphorePermit);

impl EventWriter {
    /// `max_unstored`: the most events published and not yet stored; `pace`: the
    /// shortest time between two writes ([`PACE`]).
    pub(crate) fn start(
        store: Arc<dyn Store>,
        keep_stream: u32,
        max_unstored: usize,
        pace: Duration,
    ) -> Self {
        let max_unstored = u32::try_from(max_unstored.max(1)).unwrap_or(u32::MAX);
        let (jobs, rx) = mpsc::channel(QUEUED_JOBS);
        let (asks, asks_rx) = mpsc::unbounded_channel();
        let (grants_tx, grants) = mpsc::unbounded_channel();
        let (stored_tx, stored) = watch::channel(0);
        let hurry = Arc::new(Notify::new());
        tokio::spawn(run(
            store,
            keep_stream,
            pace,
            Inbox {
                jobs: rx,
                asks: asks_rx,
            },
            grants_tx,
            stored_tx,
            hurry.clone(),
        ));
        EventWriter {
            jobs,
            asks,
            grants,
            sent: 0,
            stored,
            hurry,
            room: Arc::new(Semaphore::new(max_unstored as usize)),
            max_unstored,
        }
    }

    /// Room for `count` events to be published before they are stored: waits while the
    /// writer is that far behind. Everything published is then either stored or still
    /// in the event hub's window of recent events, which a resuming follower reads.
    pub(crate) async fn room(&self, count: usize) -> Option<OwnedSemaphorePermit> {
        let count = u32::try_from(count)
            .unwrap_or(u32::MAX)
            .min(self.max_unstored);
        self.room.clone().acquire_many_owned(count).await.ok()
    }

    /// Hands in numbered events (already published) to store, with their room.
    pub(crate) async fn store(&mut self, events: Vec<NumberedEvent>, room: OwnedSemaphorePermit) {
        if self.jobs.send(Job(events, room)).await.is_ok() {
            self.sent += 1;
        }
    }

    /// Asks for blocks of event numbers; the answer comes back through [`Self::grants`].
    /// Asks are answered as they come, not at the pace of the events.
    pub(crate) fn reserve(&self, asks: Vec<NumberAsk>) {
        let _ = self.asks.send(asks);
    }

    /// The answers to blocks asked for that have come back.
    pub(crate) fn grants(&mut self) -> Vec<Grant> {
        let mut out = Vec::new();
        while let Ok(g) = self.grants.try_recv() {
            out.push(g);
        }
        out
    }

    /// Batches of events handed in and not stored yet.
    #[cfg(test)]
    pub(crate) fn unstored(&self) -> u64 {
        self.sent - *self.stored.borrow()
    }

    /// Returns once every event handed in so far is stored (or given up on).
    pub(crate) async fn stored(&mut self) {
        let sent = self.sent;
        if *self.stored.borrow() >= sent {
            return;
        }
        self.hurry.notify_one();
        let _ = self.stored.wait_for(|stored| *stored >= sent).await;
    }
}

/// What the writer's task receives: events to store, and asks for numbers.
struct Inbox {
    jobs: mpsc::Receiver<Job>,
    asks: mpsc::UnboundedReceiver<Vec<NumberAsk>>,
}

async fn run(
    store: Arc<dyn Store>,
    keep_stream: u32,
    pace: Duration,
    Inbox {
        jobs: mut rx,
        mut asks,
    }: Inbox,
    grants: mpsc::UnboundedSender<Grant>,
    stored: watch::Sender<u64>,
    hurry: Arc<Notify>,
) {
    let mut buf = Vec::with_capacity(MAX_JOBS);
    let mut done = 0u64;
    let mut last = Instant::now();
    let mut behind = false;
    loop {
        // Jobs taken wait for the pace (or a hurry); jobs that come meanwhile queue and
        // are taken with them. Asks for numbers are answered at once.
        let waiting = !buf.is_empty() && !behind;
        tokio::select! {
            biased;
            Some(mut asked) = asks.recv() => {
                while let Ok(more) = asks.try_recv() {
                    asked.extend(more);
                }
                let blocks = retry_unavailable(|| store.reserve_event_numbers(&asked)).await;
                let _ = grants.send(Grant { asked, blocks });
                continue;
            }
            n = rx.recv_many(&mut buf, MAX_JOBS), if buf.is_empty() => {
                if n == 0 {
                    return;
                }
                if !behind {
                    continue;
                }
            }
            () = tokio::time::sleep_until(last + pace), if waiting => {}
            () = hurry.notified(), if waiting => {}
        }
        while buf.len() < MAX_JOBS
            && let Ok(job) = rx.try_recv()
        {
            buf.push(job);
        }
        behind = buf.len() == MAX_JOBS;
        last = Instant::now();
        let mut events = Vec::new();
        let mut rooms = Vec::new();
        let batches = buf.len() as u64;
        for Job(e, room) in buf.drain(..) {
            events.extend(e);
            rooms.push(room);
        }
        store_events(&*store, &events, keep_stream).await;
        drop(rooms);
        done += batches;
        stored.send_replace(done);
    }
}

/// Stores events already published. A batch the database refuses is stored event by
/// event, so that one it cannot hold is lost alone.
async fn store_events(store: &dyn Store, events: &[NumberedEvent], keep_stream: u32) {
    let e = match retry_unavailable(|| store.store_events(events, keep_stream)).await {
        Ok(()) => return,
        Err(e) => e,
    };
    if events.len() > 1 && e.code != ErrorCode::Unavailable {
        tracing::warn!(error = %e, count = events.len(), "a batch of task events was refused; storing them one by one");
        for one in events.chunks(1) {
            if let Err(e) = store.store_events(one, keep_stream).await {
                tracing::error!(error = %e, task_id = %one[0].event.task_id, seq = one[0].event.seq, "a task event could not be stored; it was published");
            }
        }
    } else {
        tracing::error!(error = %e, count = events.len(), "storing task events failed; they were published, and are lost to late followers");
    }
}
