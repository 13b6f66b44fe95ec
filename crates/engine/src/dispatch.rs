//! The dispatcher: hands queued tasks to consumers (the built-in runtime, remote
//! workers) as fast as they have free slots, claiming in batches.
//!
//! It keeps a set of agents that may have runnable work. Submissions, retries and
//! freed concurrency slots add to it through the bus (`Wake`), timers for delayed work
//! (`Scheduled`) and a slow safety-net poll mark everything. An agent leaves the set
//! when a claim comes back short, unless a wake-up arrived meanwhile (generation check),
//! so no wake-up is lost and no loop polls the database while idle.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use switchyard_core::cache::EventBus;
use switchyard_core::event::{BusMessage, TaskEvent};
use switchyard_core::store::{AgentDemand, ClaimRequest, ClaimedTask, Store};
use switchyard_core::{Timestamp, WorkerId};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::agents::AgentRegistry;

/// Which agents a consumer runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serves {
    /// Every agent whose kind is built in (echo, sleep, fail, http), not `remote` ones.
    BuiltinKinds,
    /// These agents by name (remote workers declare theirs).
    Agents(HashSet<String>),
}

/// Whether a consumer runs an agent's tasks, and how many of them may run at once in
/// the whole cluster (the agent's concurrency limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    No,
    Unlimited,
    UpTo(u32),
}

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The identity leases are taken under.
    pub worker_id: WorkerId,
    pub name: String,
    pub serves: Serves,
    pub slots: u32,
}

struct ConsumerState {
    config: ConsumerConfig,
    in_use: AtomicU32,
    draining: AtomicBool,
    tx: mpsc::UnboundedSender<Vec<ClaimedTask>>,
    /// When this consumer last got a claim, to coalesce small ones under load.
    last_claim: parking_lot::Mutex<std::time::Instant>,
}

/// Under load, a busy consumer waits until it can take a batch this big (or until
/// [`COALESCE`] passed), so claims stay large instead of one transaction per freed slot.
fn min_batch(slots: u32) -> u32 {
    (slots / 8).clamp(1, 64)
}

/// The longest a busy consumer with free slots waits to fill a batch.
const COALESCE: Duration = Duration::from_millis(2);

/// What a dispatch round found.
#[derive(Default)]
struct RoundOutcome {
    /// Some claim came back full: more work is likely waiting.
    more: bool,
    /// Some consumer deferred a small claim: look again within [`COALESCE`].
    deferred: bool,
}

impl ConsumerState {
    fn free(&self) -> u32 {
        if self.draining.load(Ordering::Relaxed) {
            return 0;
        }
        self.config
            .slots
            .saturating_sub(self.in_use.load(Ordering::Relaxed))
    }
}

/// A registered consumer. Claimed tasks arrive on `rx`; call [`Consumer::release`] as
/// each finishes. Dropping it unregisters.
pub struct Consumer {
    slots: Releaser,
    pub rx: mpsc::UnboundedReceiver<Vec<ClaimedTask>>,
}

impl Consumer {
    pub fn worker_id(&self) -> WorkerId {
        self.slots.state.config.worker_id
    }

    pub fn in_use(&self) -> u32 {
        self.slots.state.in_use.load(Ordering::Relaxed)
    }

    /// `n` tasks finished: their slots are free again.
    pub fn release(&self, n: u32) {
        self.slots.release(n);
    }

    /// Take no new work (graceful drain); running tasks continue.
    pub fn drain(&self) {
        self.slots.state.draining.store(true, Ordering::Relaxed);
    }

    /// A handle that releases slots from another task.
    pub fn releaser(&self) -> Releaser {
        self.slots.clone()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let id = self.worker_id();
        self.slots
            .dispatcher
            .consumers
            .write()
            .retain(|c| c.config.worker_id != id);
    }
}

/// Gives a consumer's slots back (and lets the dispatcher fill them): the one way slots
/// are freed, whether a task finished or a reservation went unused.
#[derive(Clone)]
pub struct Releaser {
    state: Arc<ConsumerState>,
    dispatcher: Arc<Dispatcher>,
}

impl Releaser {
    pub fn release(&self, n: u32) {
        let _ = self
            .state
            .in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        self.dispatcher.wake.notify_one();
    }
}

/// Slots held on a consumer for tasks inserted already claimed. Hand the inserted tasks
/// over with [`Reservation::deliver`]; slots not delivered are released on drop.
pub struct Reservation {
    consumer: Releaser,
    slots: u32,
}

impl Reservation {
    pub fn slots(&self) -> u32 {
        self.slots
    }

    pub fn worker_id(&self) -> WorkerId {
        self.consumer.state.config.worker_id
    }

    pub fn worker_name(&self) -> &str {
        &self.consumer.state.config.name
    }

    /// Takes over `other`'s slots (both must be on the same consumer).
    pub fn absorb(&mut self, mut other: Reservation) {
        debug_assert!(Arc::ptr_eq(&self.consumer.state, &other.consumer.state));
        self.slots += std::mem::take(&mut other.slots);
    }

    /// Hands the tasks (at most [`Reservation::slots`]) to the consumer.
    pub fn deliver(mut self, tasks: Vec<ClaimedTask>) {
        if tasks.is_empty() {
            return;
        }
        let n = (tasks.len() as u32).min(self.slots);
        self.consumer.dispatcher.metrics.claimed(&tasks);
        if self.consumer.state.tx.send(tasks).is_err() {
            // The consumer went away; its leases expire and the reaper retries the tasks.
            tracing::warn!(worker = %self.worker_id(), "consumer vanished with claimed tasks");
        }
        self.slots -= n;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.slots > 0 {
            self.consumer.release(self.slots);
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Dirty {
    generation: u64,
    /// Known to have tasks waiting (this process queued some, or a claim came back
    /// full), not merely woken: no task of the agent may skip the queue.
    backlog: bool,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    agents: Arc<AgentRegistry>,
    lease_ms: u64,
    poll_interval: Duration,
    consumers: RwLock<Vec<Arc<ConsumerState>>>,
    /// Agents that may have runnable work, with a generation bumped on every wake-up.
    dirty: Mutex<HashMap<String, Dirty>>,
    next_at: Mutex<Option<Timestamp>>,
    wake: Notify,
    rotate: AtomicUsize,
    metrics: Arc<switchyard_monitoring::Metrics>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        agents: Arc<AgentRegistry>,
        lease_ms: u64,
        poll_interval_ms: u64,
        metrics: Arc<switchyard_monitoring::Metrics>,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            store,
            bus,
            agents,
            lease_ms,
            poll_interval: Duration::from_millis(poll_interval_ms.max(10)),
            consumers: RwLock::new(Vec::new()),
            dirty: Mutex::new(HashMap::new()),
            next_at: Mutex::new(None),
            wake: Notify::new(),
            rotate: AtomicUsize::new(0),
            metrics,
        })
    }

    pub fn register(self: &Arc<Self>, config: ConsumerConfig) -> Consumer {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(ConsumerState {
            config,
            in_use: AtomicU32::new(0),
            draining: AtomicBool::new(false),
            tx,
            last_claim: parking_lot::Mutex::new(std::time::Instant::now()),
        });
        self.consumers.write().push(state.clone());
        self.mark_all_ready();
        Consumer {
            slots: Releaser {
                state,
                dispatcher: self.clone(),
            },
            rx,
        }
    }

    /// Reserves up to `want` slots on local consumers for tasks of `agent` that are about
    /// to be inserted already claimed ([`NewTask::claim`]): they skip the queue and the
    /// claim's round trip. Only when nothing of the agent is known to be waiting (so no
    /// queued task is overtaken) and the agent has no concurrency limit (which only a
    /// claim can enforce across processes). The slots come from as many consumers as it
    /// takes, starting from a different one each time: a group bigger than one
    /// consumer's free slots goes to the next ones instead of to the queue, where it would
    /// keep every later task of the agent waiting for claims.
    ///
    /// [`NewTask::claim`]: switchyard_core::store::NewTask::claim
    pub fn reserve(self: &Arc<Self>, agent: &str, want: u32) -> Vec<Reservation> {
        let mut held = Vec::new();
        if want == 0 || self.dirty.lock().get(agent).is_some_and(|d| d.backlog) {
            return held;
        }
        let consumers = self.consumers.read();
        let start = self.rotate.fetch_add(1, Ordering::Relaxed);
        let mut left = want;
        for i in 0..consumers.len() {
            if left == 0 {
                break;
            }
            let consumer = &consumers[(start + i) % consumers.len()];
            if Self::takes(consumer, &self.agents, agent) != Takes::Unlimited {
                continue;
            }
            let mut granted = 0;
            let _ = consumer
                .in_use
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    if consumer.draining.load(Ordering::Relaxed) {
                        return None;
                    }
                    granted = consumer.config.slots.saturating_sub(used).min(left);
                    (granted > 0).then_some(used + granted)
                });
            if granted > 0 {
                left -= granted;
                held.push(Reservation {
                    consumer: Releaser {
                        state: consumer.clone(),
                        dispatcher: self.clone(),
                    },
                    slots: granted,
                });
            }
        }
        held
    }

    /// How long a claim's lease lasts before heartbeats must renew it.
    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    /// These agents may have runnable work.
    pub fn mark_ready<I: IntoIterator<Item = String>>(&self, agents: I) {
        self.mark(agents, false);
    }

    /// This process just queued tasks of these agents: claim them, and let nothing of
    /// theirs skip the queue until they are claimed.
    pub fn mark_queued<I: IntoIterator<Item = String>>(&self, agents: I) {
        self.mark(agents, true);
    }

    fn mark<I: IntoIterator<Item = String>>(&self, agents: I, backlog: bool) {
        {
            let mut dirty = self.dirty.lock();
            for a in agents {
                let d = dirty.entry(a).or_default();
                d.generation += 1;
                d.backlog |= backlog;
            }
        }
        self.wake.notify_one();
    }

    /// Work becomes runnable at `at`.
    pub fn schedule(&self, at: Timestamp) {
        let mut next = self.next_at.lock();
        if next.is_none_or(|n| at < n) {
            *next = Some(at);
            drop(next);
            self.wake.notify_one();
        }
    }

    fn mark_all_ready(&self) {
        let names: Vec<String> = self
            .agents
            .all_cached()
            .iter()
            .map(|e| e.spec().name.clone())
            .collect();
        self.mark_ready(names);
    }

    /// Whether `consumer` runs tasks of the agent `name`, and under which limit.
    fn takes(consumer: &ConsumerState, agents: &AgentRegistry, name: &str) -> Takes {
        let Some(entry) = agents.cached(name) else {
            return Takes::No;
        };
        let served = match &consumer.config.serves {
            Serves::BuiltinKinds => entry.spec().kind.is_builtin(),
            Serves::Agents(names) => names.contains(name),
        };
        match (served, entry.spec().concurrency) {
            (false, _) => Takes::No,
            (true, None) => Takes::Unlimited,
            (true, Some(n)) => Takes::UpTo(n),
        }
    }

    /// One pass over the consumers.
    async fn round(&self) -> RoundOutcome {
        let consumers: Vec<Arc<ConsumerState>> = self.consumers.read().clone();
        let mut outcome = RoundOutcome::default();
        if consumers.is_empty() {
            return outcome;
        }
        let start = self.rotate.fetch_add(1, Ordering::Relaxed);
        for i in 0..consumers.len() {
            let consumer = &consumers[(start + i) % consumers.len()];
            let free = consumer.free();
            if free == 0 {
                continue;
            }
            let busy = consumer.in_use.load(Ordering::Relaxed) > 0;
            if busy
                && free < min_batch(consumer.config.slots)
                && consumer.last_claim.lock().elapsed() < COALESCE
            {
                outcome.deferred = true;
                continue;
            }
            let candidates: Vec<(String, u64, Option<u32>)> = {
                let dirty = self.dirty.lock();
                dirty
                    .iter()
                    .filter_map(|(name, d)| {
                        let limit = match Self::takes(consumer, &self.agents, name) {
                            Takes::No => return None,
                            Takes::Unlimited => None,
                            Takes::UpTo(n) => Some(n),
                        };
                        Some((name.clone(), d.generation, limit))
                    })
                    .collect()
            };
            if candidates.is_empty() {
                continue;
            }
            let share = free.div_ceil(candidates.len() as u32).max(1);
            let request = ClaimRequest {
                worker_id: consumer.config.worker_id,
                worker_name: consumer.config.name.clone(),
                now: Timestamp::now(),
                lease_ms: self.lease_ms,
                demands: candidates
                    .iter()
                    .map(|(agent, _, limit)| AgentDemand {
                        agent: agent.clone(),
                        max: share.min(free),
                        concurrency: *limit,
                    })
                    .collect(),
            };
            let claimed = match self.store.claim_tasks(&request).await {
                Ok(c) => {
                    self.metrics.claimed(&c);
                    c
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming tasks failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    outcome.more = true;
                    return outcome;
                }
            };
            *consumer.last_claim.lock() = std::time::Instant::now();
            let mut per_agent: HashMap<&str, u32> = HashMap::new();
            for c in &claimed {
                *per_agent.entry(c.agent.as_str()).or_default() += 1;
            }
            {
                let mut dirty = self.dirty.lock();
                for (agent, generation, _) in &candidates {
                    let got = per_agent.get(agent.as_str()).copied().unwrap_or(0);
                    if got < share.min(free) {
                        // Drained (or at its concurrency limit), unless woken meanwhile.
                        if dirty
                            .get(agent)
                            .is_some_and(|d| d.generation == *generation)
                        {
                            dirty.remove(agent);
                        }
                    } else {
                        if let Some(d) = dirty.get_mut(agent) {
                            d.backlog = true;
                        }
                        outcome.more = true;
                    }
                }
            }
            if !claimed.is_empty() {
                let events = claimed
                    .iter()
                    .map(|c| Arc::new(TaskEvent::claimed(c, request.now)))
                    .collect();
                self.bus.send(BusMessage::Tasks { events }).await;
                consumer
                    .in_use
                    .fetch_add(claimed.len() as u32, Ordering::Relaxed);
                if consumer.tx.send(claimed).is_err() {
                    // The consumer went away; its leases expire and the reaper retries them.
                    tracing::warn!(worker = %consumer.config.worker_id, "consumer vanished with claimed tasks");
                }
            }
        }
        outcome
    }

    /// Runs until `shutdown`, fed by bus wake-ups.
    pub async fn run(
        self: Arc<Self>,
        mut bus: broadcast::Receiver<Arc<BusMessage>>,
        shutdown: CancellationToken,
    ) {
        let listener = {
            let this = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let msg = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        msg = bus.recv() => msg,
                    };
                    match msg {
                        Ok(msg) => match &*msg {
                            BusMessage::Wake { agents } => this.mark_ready(agents.iter().cloned()),
                            BusMessage::Scheduled { at } => this.schedule(*at),
                            BusMessage::AgentChanged { name } => this.mark_ready([name.clone()]),
                            _ => {}
                        },
                        Err(broadcast::error::RecvError::Lagged(_)) => this.mark_all_ready(),
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        };
        self.refresh_schedule().await;
        self.mark_all_ready();
        let mut next_poll = tokio::time::Instant::now() + self.poll_interval;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let outcome = self.round().await;
            if outcome.more {
                tokio::task::yield_now().await;
                continue;
            }
            let now = Timestamp::now();
            let timer = *self.next_at.lock();
            let until_timer = timer.map(|t| Duration::from_millis(t.since(now)));
            let poll_in = next_poll.saturating_duration_since(tokio::time::Instant::now());
            let mut sleep_for = until_timer.map_or(poll_in, |t| t.min(poll_in));
            if outcome.deferred {
                sleep_for = sleep_for.min(COALESCE);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep_for) => {
                    let now = Timestamp::now();
                    let due = self.next_at.lock().is_some_and(|t| t <= now);
                    if due {
                        *self.next_at.lock() = None;
                        self.mark_all_ready();
                        self.refresh_schedule().await;
                    }
                    if tokio::time::Instant::now() >= next_poll {
                        next_poll = tokio::time::Instant::now() + self.poll_interval;
                        self.mark_all_ready();
                        self.refresh_schedule().await;
                    }
                }
            }
        }
        listener.abort();
    }

    async fn refresh_schedule(&self) {
        match self.store.next_run_at(Timestamp::now()).await {
            Ok(Some(at)) => self.schedule(at),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the next scheduled task"),
        }
    }
}

#[cfg(test)]
mod tests;
