//! Group commit for submissions: concurrent requests share one database transaction.
//!
//! Each request hands its tasks to a single loop and waits. The loop takes everything
//! queued (up to `max_write_batch` tasks), inserts it in one transaction, then answers
//! every request. Under load, one fsync covers hundreds of acknowledged tasks; when idle,
//! a lone request commits at once, with no added latency.

use std::sync::Arc;

use switchyard_core::cache::EventBus;
use switchyard_core::store::{NewTask, Store, Submitted, Transition};
use switchyard_core::{Error, Result, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::monitoring::Metrics;
use crate::publish::announce;

struct Pending {
    tasks: Vec<NewTask>,
    reply: oneshot::Sender<Result<Vec<Submitted>>>,
}

#[derive(Clone)]
pub struct Submitter {
    tx: mpsc::Sender<Pending>,
}

impl Submitter {
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        idempotency_window_ms: u64,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4_096);
        tokio::spawn(run(
            rx,
            store,
            bus,
            idempotency_window_ms,
            max_batch.max(1),
            metrics,
        ));
        Submitter { tx }
    }

    /// Inserts `tasks` atomically (all or none) and returns once they are durable.
    pub async fn submit(&self, tasks: Vec<NewTask>) -> Result<Vec<Submitted>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { tasks, reply })
            .await
            .map_err(|_| Error::unavailable("the server is shutting down"))?;
        rx.await
            .map_err(|_| Error::unavailable("the submission was interrupted"))?
    }
}

async fn run(
    mut rx: mpsc::Receiver<Pending>,
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    idempotency_window_ms: u64,
    max_batch: usize,
    metrics: Arc<Metrics>,
) {
    let mut carry: Option<Pending> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut group = vec![first];
        let mut size = group[0].tasks.len();
        while size < max_batch {
            match rx.try_recv() {
                Ok(p) if size + p.tasks.len() <= max_batch => {
                    size += p.tasks.len();
                    group.push(p);
                }
                Ok(p) => {
                    carry = Some(p);
                    break;
                }
                Err(_) => break,
            }
        }
        commit(&store, &bus, group, idempotency_window_ms, &metrics).await;
    }
}

async fn commit(
    store: &Arc<dyn Store>,
    bus: &Arc<dyn EventBus>,
    group: Vec<Pending>,
    window_ms: u64,
    metrics: &Metrics,
) {
    let now = Timestamp::now();
    let counts: Vec<usize> = group.iter().map(|p| p.tasks.len()).collect();
    let (tasks, replies): (Vec<Vec<NewTask>>, Vec<_>) =
        group.into_iter().map(|p| (p.tasks, p.reply)).unzip();
    let batch: Vec<NewTask> = tasks.into_iter().flatten().collect();
    let since = now.minus_ms(window_ms);
    match store.insert_tasks(batch, since).await {
        Ok(results) => {
            metrics.submitted(&results);
            let transitions = results
                .iter()
                .filter_map(|s| match s {
                    Submitted::Created(t) => Some(Transition::inserted(t)),
                    Submitted::Existing(_) => None,
                })
                .collect();
            announce(bus, transitions, now).await;
            let mut results = results.into_iter();
            for (reply, n) in replies.into_iter().zip(counts) {
                let _ = reply.send(Ok(results.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "inserting submitted tasks failed");
            for reply in replies {
                let err = Error::new(e.code, e.message.clone());
                let _ = reply.send(Err(err));
            }
        }
    }
}
