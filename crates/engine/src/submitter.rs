//! Group commit for submissions: concurrent requests share one database transaction.
//!
//! Each request hands its tasks to a single loop and waits. The loop takes everything
//! queued (up to `max_write_batch` tasks), inserts it in one transaction, then answers
//! every request. Under load, one fsync covers hundreds of acknowledged tasks; when idle,
//! a lone request commits at once, with no added latency.
//!
//! When a local consumer has free slots for an agent with nothing waiting, its tasks are
//! inserted already claimed and handed straight to that consumer after the commit: no
//! queue, no claim round trip (see [`Dispatcher::reserve`]).
//!
//! On a bus that leaves the process (Redis, the database), announcing a group's events is
//! a network round trip of its own. It trails the commit on a separate task, so that the
//! loop goes on to the next group and submitters are answered as soon as their tasks are
//! durable. Groups are announced one after another in commit order, and a group's direct
//! claims reach their consumers only after its events are out: a task's `queued` and
//! `running` always precede whatever its run reports.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_core::cache::EventBus;
use switchyard_core::store::{
    ClaimedTask, DirectClaim, NewTask, Store, Submitted, Synced, Transition,
};
use switchyard_core::task::{Task, TaskStatus};
use switchyard_core::{Error, ErrorCode, Result, Timestamp, WorkerId};
use tokio::sync::{mpsc, oneshot};

use crate::announcer::announce;
use crate::dispatch::{Dispatcher, Reservation};
use switchyard_monitoring::Metrics;

/// A group whose commit failed as a whole, still to be answered.
struct Failed {
    batch: Vec<NewTask>,
    counts: Vec<usize>,
    replies: Vec<oneshot::Sender<Result<Vec<Submitted>>>>,
}

struct Pending {
    tasks: Vec<NewTask>,
    reply: oneshot::Sender<Result<Vec<Submitted>>>,
}

#[derive(Clone)]
pub struct Submitter {
    tx: mpsc::Sender<Pending>,
}

/// What is left of a committed group once the loop moves on: its events to publish, then
/// its direct claims to hand over (with the consumer slots reserved for them).
struct Announcement {
    transitions: Vec<Transition>,
    claimed: HashMap<WorkerId, Vec<ClaimedTask>>,
    reservations: HashMap<WorkerId, Reservation>,
    now: Timestamp,
}

impl Announcement {
    async fn run(mut self, bus: &Arc<dyn EventBus>) {
        announce(bus, self.transitions, self.now).await;
        for (worker, tasks) in self.claimed {
            if let Some(r) = self.reservations.remove(&worker) {
                r.deliver(tasks);
            }
        }
    }
}

/// How many committed groups may wait for their announcement before the loop waits too.
const ANNOUNCE_BACKLOG: usize = 64;

impl Submitter {
    /// `dispatcher`: the local one, if this process runs consumers (direct claims).
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        dispatcher: Option<Arc<Dispatcher>>,
        idempotency_window_ms: u64,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4_096);
        // An in-process bus publishes in no time: announcing inline saves a task hop.
        let announcer = (!bus.in_process()).then(|| {
            let (atx, mut arx) = mpsc::channel::<Announcement>(ANNOUNCE_BACKLOG);
            let bus = bus.clone();
            tokio::spawn(async move {
                while let Some(a) = arx.recv().await {
                    a.run(&bus).await;
                }
            });
            atx
        });
        let loop_ = Loop {
            store,
            bus,
            dispatcher,
            window_ms: idempotency_window_ms,
            metrics,
            announcer,
        };
        tokio::spawn(loop_.run(rx, max_batch.max(1)));
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

struct Loop {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    dispatcher: Option<Arc<Dispatcher>>,
    window_ms: u64,
    metrics: Arc<Metrics>,
    /// Set when the bus leaves the process (see the module documentation).
    announcer: Option<mpsc::Sender<Announcement>>,
}

impl Loop {
    async fn run(self, mut rx: mpsc::Receiver<Pending>, max_batch: usize) {
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
            self.commit(group).await;
        }
    }

    async fn commit(&self, group: Vec<Pending>) {
        if let Some(failed) = self.commit_group(group).await {
            self.isolate(failed).await;
        }
    }

    /// Commits a group and answers its requests; a group that failed as a whole comes
    /// back (its requests unanswered) when it had more than one request and the
    /// failure may lie with one of them.
    async fn commit_group(&self, group: Vec<Pending>) -> Option<Failed> {
        let now = Timestamp::now();
        let counts: Vec<usize> = group.iter().map(|p| p.tasks.len()).collect();
        let (tasks, replies): (Vec<Vec<NewTask>>, Vec<_>) =
            group.into_iter().map(|p| (p.tasks, p.reply)).unzip();
        let mut batch: Vec<NewTask> = tasks.into_iter().flatten().collect();
        let reservations = self.reserve(&mut batch, now).await;
        let since = now.minus_ms(self.window_ms);
        match self.store.insert_tasks_then_sync(&batch, since).await {
            Ok((results, synced)) => {
                self.metrics.submitted(&results);
                let mut transitions = Vec::with_capacity(results.len());
                let mut claimed: HashMap<WorkerId, Vec<ClaimedTask>> = HashMap::new();
                let mut queued = Vec::new();
                for s in &results {
                    let Submitted::Created(t) = s else { continue };
                    transitions.extend(inserted_transitions(t));
                    if let Some((worker, c)) = claim_of(t) {
                        claimed.entry(worker).or_default().push(c);
                    } else if t.status == TaskStatus::Queued && t.run_at <= now {
                        queued.push(t.agent.clone());
                    }
                }
                // Tasks that went to the queue: the local dispatcher looks at once.
                if let (Some(d), false) = (&self.dispatcher, queued.is_empty()) {
                    queued.dedup();
                    d.mark_queued(queued);
                }
                // The tasks may run while the commit reaches the disk, but submitters
                // hear of them only once it has; meanwhile this loop commits the next group.
                // A commit that is durable when it returns (PostgreSQL) is answered here,
                // before the announcement: a task spawned to answer would wait its turn
                // behind every ready task.
                let mut synced = synced;
                match done_already(&mut synced) {
                    Some(done) => answer(replies, counts, results, done),
                    None => {
                        tokio::spawn(async move {
                            answer(replies, counts, results, synced.await);
                        });
                    }
                }
                let announcement = Announcement {
                    transitions,
                    claimed,
                    reservations,
                    now,
                };
                // Announced here on an in-process bus (or if the announcer has stopped).
                let inline = match &self.announcer {
                    Some(tx) => tx.send(announcement).await.err().map(|e| e.0),
                    None => Some(announcement),
                };
                if let Some(a) = inline {
                    a.run(&self.bus).await;
                }
                None
            }
            // The database is down for everyone: one attempt per request would only
            // multiply the failures.
            Err(e) if replies.len() > 1 && e.code != ErrorCode::Unavailable => {
                tracing::warn!(error = %e, requests = replies.len(), "a submitted group failed; committing its requests one by one");
                Some(Failed {
                    batch,
                    counts,
                    replies,
                })
            }
            Err(e) => {
                if e.is_internal() {
                    tracing::error!(error = %e, "inserting submitted tasks failed");
                }
                for reply in replies {
                    let mut err = Error::new(e.code, e.message.clone());
                    err.details = e.details.clone();
                    let _ = reply.send(Err(err));
                }
                None
            }
        }
    }

    /// Commits each request of a failed group on its own, so that one request's bad
    /// value fails that request alone and everyone else's tasks go in.
    async fn isolate(&self, failed: Failed) {
        let Failed {
            batch,
            counts,
            replies,
        } = failed;
        let mut tasks = batch.into_iter();
        for (reply, n) in replies.into_iter().zip(counts) {
            let mut mine: Vec<NewTask> = tasks.by_ref().take(n).collect();
            // Their slots went back when the group failed; they are reserved anew.
            for t in &mut mine {
                t.claim = None;
            }
            let single = vec![Pending { tasks: mine, reply }];
            // A group of one request is answered, never returned.
            let _ = Box::pin(self.commit_group(single)).await;
        }
    }

    /// Claims, on local consumers with free slots, the tasks that can run now: per
    /// agent, the highest priorities first. Slots not used are released when the
    /// reservations drop.
    async fn reserve(
        &self,
        batch: &mut [NewTask],
        now: Timestamp,
    ) -> HashMap<WorkerId, Reservation> {
        let mut held = HashMap::new();
        let Some(dispatcher) = &self.dispatcher else {
            return held;
        };
        let mut by_agent: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, t) in batch.iter().enumerate() {
            if t.claim.is_none() && t.cached_output.is_none() && t.run_at <= now {
                by_agent.entry(t.agent.as_str()).or_default().push(i);
            }
        }
        let mut grants = Vec::new();
        for (agent, mut indexes) in by_agent {
            let reservations = dispatcher.reserve(agent, indexes.len() as u32).await;
            if reservations.is_empty() {
                continue;
            }
            indexes.sort_by(|a, b| {
                batch[*b]
                    .priority
                    .cmp(&batch[*a].priority)
                    .then(batch[*a].id.cmp(&batch[*b].id))
            });
            // The highest priorities first, consumer after consumer; the rest is queued.
            let mut rest = indexes.as_slice();
            for r in reservations {
                let (mine, later) = rest.split_at((r.slots() as usize).min(rest.len()));
                rest = later;
                let claim = DirectClaim {
                    worker_id: r.worker_id(),
                    worker_name: r.worker_name().to_owned(),
                    lease_expires_at: now.plus_ms(dispatcher.lease_ms()),
                };
                grants.push((mine.to_vec(), claim));
                // Two agents may land on one consumer: keep both reservations' slots.
                match held.entry(r.worker_id()) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(r);
                    }
                    std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().absorb(r),
                }
            }
        }
        for (indexes, claim) in grants {
            for i in indexes {
                batch[i].claim = Some(claim.clone());
            }
        }
        held
    }
}

/// The outcome of `synced` if it is known without waiting.
fn done_already(synced: &mut Synced) -> Option<Result<()>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match synced.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(done) => Some(done),
        std::task::Poll::Pending => None,
    }
}

/// Answers each request of a committed group with its share of `results` (`counts`, in
/// request order), or all of them with the error that kept the group from being durable.
fn answer(
    replies: Vec<oneshot::Sender<Result<Vec<Submitted>>>>,
    counts: Vec<usize>,
    results: Vec<Submitted>,
    synced: Result<()>,
) {
    if let Err(e) = synced {
        tracing::error!(error = %e, "submitted tasks were not made durable");
        for reply in replies {
            let _ = reply.send(Err(Error::new(e.code, e.message.clone())));
        }
        return;
    }
    let mut results = results.into_iter();
    for (reply, n) in replies.into_iter().zip(counts) {
        let _ = reply.send(Ok(results.by_ref().take(n).collect()));
    }
}

/// The events of a just-inserted task: `queued` (or `succeeded` from the cache), and for
/// a task inserted claimed, its `running` as well.
fn inserted_transitions(t: &Task) -> Vec<Transition> {
    let first = Transition::inserted(t);
    if t.status != TaskStatus::Running {
        return vec![first];
    }
    let running = Transition {
        seq: t.seq,
        attempt: 1,
        ..first.clone()
    };
    let queued = Transition {
        status: TaskStatus::Queued,
        seq: t.seq - 1,
        ..first
    };
    vec![queued, running]
}

/// The claim a task inserted `running` stands for, and the consumer it belongs to.
fn claim_of(t: &Task) -> Option<(WorkerId, ClaimedTask)> {
    if t.status != TaskStatus::Running {
        return None;
    }
    let worker = t.attempts.last()?.worker_id?;
    Some((
        worker,
        ClaimedTask {
            id: t.id,
            agent: t.agent.clone(),
            input: t.input.clone(),
            priority: t.priority,
            attempt: 1,
            attempts_in_run: 1,
            seq: t.seq,
            owner_id: t.owner_id,
            parent_id: t.parent_id,
            trace_id: t.trace_id.clone(),
            created_at: t.created_at,
            run_at: t.run_at,
            claimed_at: t.created_at,
            fair_key: switchyard_core::flow::fair_key(t.concurrency_key.as_deref(), t.owner_id),
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use switchyard_cache::memory::LocalBus;
    use switchyard_core::event::{BusMessage, SharedBusMessage};
    use switchyard_store::conformance::new_task;
    use switchyard_store::sqlite::{Durability, SqliteStore};
    use tokio::sync::{Semaphore, broadcast};

    use super::*;

    /// A bus that leaves the process, and publishes only as far as it is let through.
    struct GatedBus {
        inner: LocalBus,
        gate: Semaphore,
    }

    #[async_trait]
    impl EventBus for GatedBus {
        fn backend(&self) -> &'static str {
            "gated"
        }

        async fn publish(&self, message: SharedBusMessage) -> Result<()> {
            self.gate.acquire().await.expect("gate open").forget();
            self.inner.publish(message).await
        }

        fn subscribe(&self) -> broadcast::Receiver<SharedBusMessage> {
            self.inner.subscribe()
        }
    }

    /// Both ways a group is answered: after the WAL flush (`Full`: the commit returns
    /// before it is durable) and at once (`Normal`, like PostgreSQL: durable on return).
    #[tokio::test]
    async fn a_slow_bus_holds_up_no_acknowledgement_and_groups_are_announced_in_commit_order() {
        for durability in [Durability::Full, Durability::Normal] {
            acknowledged_before_announced_in_commit_order(durability).await;
        }
    }

    /// A migrated SQLite store in a directory of its own (kept while the guard lives).
    async fn sqlite_store(durability: Durability) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite"), durability)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    async fn acknowledged_before_announced_in_commit_order(durability: Durability) {
        let (_dir, store) = sqlite_store(durability).await;
        let bus = Arc::new(GatedBus {
            inner: LocalBus::default(),
            gate: Semaphore::new(0),
        });
        let mut seen = bus.subscribe();
        let submitter = Submitter::start(
            Arc::new(store),
            bus.clone(),
            None,
            60_000,
            100,
            Arc::new(Metrics::new(false)),
        );
        let now = Timestamp::now();
        let mut ids = Vec::new();
        for agent in ["first", "second", "third"] {
            let task = new_task(agent, 0, now);
            ids.push(task.id);
            // Durable, hence acknowledged, while the bus has published nothing.
            let done = tokio::time::timeout(Duration::from_secs(60), submitter.submit(vec![task]))
                .await
                .expect("the acknowledgement does not wait for the bus")
                .unwrap();
            assert!(matches!(done[..], [Submitted::Created(_)]));
        }
        assert!(matches!(
            seen.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));

        bus.gate.add_permits(1_000);
        let mut announced = Vec::new();
        while announced.len() < ids.len() {
            let message = tokio::time::timeout(Duration::from_secs(60), seen.recv())
                .await
                .expect("the announcements follow once the bus lets them")
                .unwrap();
            if let BusMessage::Tasks { events } = &*message {
                announced.extend(events.iter().map(|e| e.task_id));
            }
        }
        assert_eq!(announced, ids);
    }

    /// One request whose tasks cannot be inserted (here: an id that exists) fails alone;
    /// the requests it shared a group commit with are inserted and acknowledged.
    #[tokio::test(flavor = "current_thread")]
    async fn a_bad_request_fails_alone_and_its_group_goes_in() {
        let (_dir, store) = sqlite_store(Durability::Full).await;
        let store: Arc<dyn Store> = Arc::new(store);
        let submitter = Submitter::start(
            store.clone(),
            Arc::new(LocalBus::default()),
            None,
            60_000,
            100,
            Arc::new(Metrics::new(false)),
        );
        let now = Timestamp::now();
        let first = new_task("echo", 0, now);
        submitter.submit(vec![first.clone()]).await.unwrap();

        // Spawned together on one thread, they reach the loop before it runs again: one
        // group, with the duplicate in the middle.
        let mut duplicate = new_task("echo", 0, now);
        duplicate.id = first.id;
        let good_before = new_task("echo", 0, now);
        let good_after = vec![new_task("echo", 1, now), new_task("echo", 2, now)];
        let submit = |tasks: Vec<NewTask>| {
            let s = submitter.clone();
            tokio::spawn(async move { s.submit(tasks).await })
        };
        let handles = [
            submit(vec![good_before.clone()]),
            submit(vec![duplicate]),
            submit(good_after.clone()),
        ];
        let mut outcomes = Vec::new();
        for h in handles {
            outcomes.push(h.await.unwrap());
        }
        assert!(outcomes[1].is_err(), "the duplicate is refused");
        for (i, ids) in [
            (0, vec![good_before.id]),
            (2, good_after.iter().map(|t| t.id).collect()),
        ] {
            let done = outcomes[i].as_ref().expect("the others go in");
            assert_eq!(done.len(), ids.len());
            for id in ids {
                assert!(store.get_task(id).await.unwrap().is_some());
            }
        }
    }

    /// A group bigger than one consumer's free slots fills the next consumers before
    /// anything goes to the queue, highest priorities first.
    #[tokio::test]
    async fn a_group_is_spread_over_consumers_before_it_is_queued() {
        let (_dir, store) = sqlite_store(Durability::Full).await;
        let store: Arc<dyn Store> = Arc::new(store);
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::default());
        let agents = Arc::new(crate::agents::AgentRegistry::new(
            store.clone(),
            bus.clone(),
        ));
        agents.init().await.unwrap();
        let metrics = Arc::new(Metrics::new(false));
        let dispatcher = Dispatcher::new(
            store.clone(),
            bus.clone(),
            agents,
            30_000,
            1_000,
            metrics.clone(),
            store.clone(),
        );
        let mut consumers: Vec<_> = (0..2)
            .map(|i| {
                dispatcher.register(crate::dispatch::ConsumerConfig {
                    worker_id: WorkerId::new(),
                    name: format!("w{i}"),
                    serves: crate::dispatch::Serves::BuiltinKinds,
                    slots: 3,
                })
            })
            .collect();
        let submitter = Submitter::start(store, bus, Some(dispatcher), 60_000, 100, metrics);

        let now = Timestamp::now();
        let tasks: Vec<NewTask> = (0..7).map(|p| new_task("echo", p, now)).collect();
        let lowest = tasks[0].id;
        let done = submitter.submit(tasks).await.unwrap();
        let mut queued = Vec::new();
        let mut worker_of = HashMap::new();
        for s in &done {
            let Submitted::Created(t) = s else {
                panic!("not created: {s:?}")
            };
            if t.status == TaskStatus::Queued {
                queued.push(t.id);
            } else {
                assert_eq!(t.status, TaskStatus::Running);
                worker_of.insert(t.id, t.attempts.last().and_then(|a| a.worker_id));
            }
        }
        assert_eq!(
            queued,
            vec![lowest],
            "six run at once, the lowest priority waits"
        );
        for c in &mut consumers {
            let handed = tokio::time::timeout(Duration::from_secs(60), c.rx.recv())
                .await
                .expect("each consumer gets its share")
                .unwrap();
            assert_eq!(handed.len(), 3);
            assert!(
                handed
                    .iter()
                    .all(|t| worker_of[&t.id] == Some(c.worker_id()))
            );
            assert_eq!(c.in_use(), 3);
        }
    }
}
