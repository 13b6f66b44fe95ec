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
use switchyard_core::flow::{RateLimit, RateLimiter, flow_key_of_fair, limiter_key, share_turns};
use switchyard_core::store::{AgentDemand, ClaimRequest, ClaimedTask, KeyQuota, Store};
use switchyard_core::{Timestamp, WorkerId};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::agents::AgentRegistry;

/// Which agents a consumer runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serves {
    /// Every agent whose kind is built in (echo, sleep, fail, http, command, llm), not `remote` ones.
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
    /// Under an agent-wide rate limit only: direct claims take starts from the limiter.
    Paced,
    /// Under a concurrency limit (per agent or per key) or a per-key rate limit, which
    /// only a claim can enforce across processes.
    Limited,
}

/// A demand with the rate-limited starts taken for it.
struct Rationed {
    demand: AgentDemand,
    /// Limiter keys and the starts taken from each.
    permits: Vec<(String, u32)>,
    limit: Option<RateLimit>,
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

/// How long a failed claim is retried to be taken back (the database may be restarting).
const RELEASE_FOR: Duration = Duration::from_secs(120);

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
    limiter: Arc<dyn RateLimiter>,
    /// Per agent, the fair key its last claim ended with (see `AgentDemand::after`).
    cursors: Mutex<HashMap<String, String>>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        agents: Arc<AgentRegistry>,
        lease_ms: u64,
        poll_interval_ms: u64,
        metrics: Arc<switchyard_monitoring::Metrics>,
        limiter: Arc<dyn RateLimiter>,
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
            limiter,
            cursors: Mutex::new(HashMap::new()),
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
    /// claim can enforce across processes); an agent-wide rate limit gives as many
    /// starts as it allows now. The slots come from as many consumers as it
    /// takes, starting from a different one each time: a group bigger than one
    /// consumer's free slots goes to the next ones instead of to the queue, where it would
    /// keep every later task of the agent waiting for claims.
    ///
    /// [`NewTask::claim`]: switchyard_core::store::NewTask::claim
    pub async fn reserve(self: &Arc<Self>, agent: &str, want: u32) -> Vec<Reservation> {
        if want == 0 || self.dirty.lock().get(agent).is_some_and(|d| d.backlog) {
            return Vec::new();
        }
        let pace = self
            .agents
            .cached(agent)
            .and_then(|e| e.spec().rate_limit.clone())
            .filter(|l| l.key.is_none());
        let Some(limit) = pace else {
            return self.reserve_slots(agent, want, Takes::Unlimited);
        };
        let key = limiter_key(agent, None);
        let granted = match self
            .limiter
            .acquire(&key, want, &limit, Timestamp::now())
            .await
        {
            Ok(grant) => grant.granted,
            Err(e) => {
                tracing::warn!(agent, error = %e, "rate limiter unavailable; queueing");
                0
            }
        };
        let held = self.reserve_slots(agent, granted, Takes::Paced);
        let used: u32 = held.iter().map(|r| r.slots).sum();
        if used < granted
            && let Err(e) = self.limiter.refund(&key, granted - used, &limit).await
        {
            tracing::warn!(agent, error = %e, "could not give back unused starts");
        }
        held
    }

    /// [`Dispatcher::reserve`]'s slots, on consumers that take `agent` as `kind`.
    fn reserve_slots(self: &Arc<Self>, agent: &str, want: u32, kind: Takes) -> Vec<Reservation> {
        let mut held = Vec::new();
        if want == 0 {
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
            if Self::takes(consumer, &self.agents, agent) != kind {
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
        let spec = entry.spec();
        match served {
            false => Takes::No,
            true if spec.counts_starts() => Takes::Limited,
            true if spec.rate_limit.is_some() => Takes::Paced,
            true => Takes::Unlimited,
        }
    }

    /// What to ask the store for on behalf of `agent` (up to `want` tasks): its limits,
    /// where its turns continue, and the starts its rate limit allows now. `None` when
    /// the rate limit allows none (a wake-up is scheduled for when it will).
    async fn demand(&self, agent: &str, want: u32, now: Timestamp) -> Option<Rationed> {
        let entry = self.agents.cached(agent)?;
        let spec = entry.spec();
        let mut demand = AgentDemand {
            agent: agent.to_owned(),
            max: want,
            concurrency: spec.concurrency,
            per_key: spec.concurrency_per_key,
            after: self.cursors.lock().get(agent).cloned(),
            keys: None,
        };
        let Some(limit) = spec.rate_limit.clone() else {
            return Some(Rationed {
                demand,
                permits: Vec::new(),
                limit: None,
            });
        };
        let mut permits = Vec::new();
        let mut retry_at: Option<Timestamp> = None;
        let mut ask = async |key: String, n: u32| -> u32 {
            match self.limiter.acquire(&key, n, &limit, now).await {
                Ok(grant) => {
                    if let Some(at) = grant.retry_at {
                        retry_at = Some(retry_at.map_or(at, |r| r.min(at)));
                    }
                    if grant.granted > 0 {
                        permits.push((key, grant.granted));
                    }
                    grant.granted
                }
                Err(e) => {
                    tracing::warn!(agent, error = %e, "rate limiter unavailable; starting nothing of the agent");
                    retry_at = Some(now.plus_ms(1_000));
                    0
                }
            }
        };
        if limit.key.is_none() {
            demand.max = ask(limiter_key(agent, None), want).await;
        } else {
            // Per key: ration each key's turn.
            let keys = match self
                .store
                .runnable_keys(
                    agent,
                    now,
                    demand.after.as_deref(),
                    want,
                    demand.per_key.is_some(),
                )
                .await
            {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::error!(agent, error = %e, "reading runnable keys failed");
                    return None;
                }
            };
            let rooms: Vec<u32> = keys
                .iter()
                .map(|k| match (demand.per_key, flow_key_of_fair(&k.fair_key)) {
                    (Some(n), Some(_)) => n.saturating_sub(k.running),
                    _ => want,
                })
                .collect();
            let mut quotas = Vec::new();
            for (key, share) in keys.iter().zip(share_turns(want, &rooms)) {
                if share == 0 {
                    continue;
                }
                let granted = ask(limiter_key(agent, flow_key_of_fair(&key.fair_key)), share).await;
                quotas.push(KeyQuota {
                    fair_key: key.fair_key.clone(),
                    priority: key.priority,
                    max: granted,
                });
            }
            demand.max = quotas.iter().map(|q| q.max).sum();
            demand.keys = Some(quotas);
        }
        if let Some(at) = retry_at {
            self.schedule(at);
        }
        (demand.max > 0).then_some(Rationed {
            demand,
            permits,
            limit: Some(limit),
        })
    }

    /// A claim failed, perhaps after it committed (the connection died before its
    /// answer came): once the database answers again, the tasks it may have leased to the
    /// consumer go back to the queue. The consumer never got them, and its heartbeats
    /// would otherwise renew their leases for as long as it lives.
    fn release_failed_claim(&self, request: &ClaimRequest) {
        let (store, worker, at) = (self.store.clone(), request.worker_id, request.now);
        let agents: Vec<String> = request.demands.iter().map(|d| d.agent.clone()).collect();
        let wake = self.bus.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + RELEASE_FOR;
            loop {
                match store.release_claim(worker, at).await {
                    Ok(0) => return,
                    Ok(n) => {
                        tracing::warn!(tasks = n, worker = %worker, "took back the tasks of a claim whose answer was lost");
                        wake.send(BusMessage::Wake { agents }).await;
                        return;
                    }
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(error = %e, "cannot release a failed claim yet");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, worker = %worker, "could not release a failed claim; its tasks wait for the worker's leases to end");
                        return;
                    }
                }
            }
        });
    }

    /// Gives back the starts a claim took from the rate limiter but found no task for.
    async fn refund(&self, rationed: &[Rationed], claimed: &[ClaimedTask]) {
        for r in rationed {
            let Some(limit) = &r.limit else { continue };
            for (key, granted) in &r.permits {
                let used = claimed
                    .iter()
                    .filter(|c| {
                        c.agent == r.demand.agent
                            && (limit.key.is_none()
                                || limiter_key(&c.agent, flow_key_of_fair(&c.fair_key)) == *key)
                    })
                    .count() as u32;
                if used < *granted
                    && let Err(e) = self.limiter.refund(key, granted - used, limit).await
                {
                    tracing::warn!(error = %e, "could not give back unused starts");
                }
            }
        }
    }

    /// Where `agent`'s next turns start: after the last key this claim served, in turn
    /// order (the keys after the previous cursor, then the ones before it).
    fn advance_cursor(&self, agent: &str, claimed: &[ClaimedTask]) {
        let mut cursors = self.cursors.lock();
        let old = cursors.get(agent).cloned().unwrap_or_default();
        let keys = claimed
            .iter()
            .filter(|c| c.agent == agent)
            .map(|c| &c.fair_key);
        let (wrapped, ahead): (Vec<&String>, Vec<&String>) = keys.partition(|k| **k <= old);
        if let Some(last) = wrapped
            .into_iter()
            .max()
            .or_else(|| ahead.into_iter().max())
        {
            cursors.insert(agent.to_owned(), last.clone());
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
            let candidates: Vec<(String, u64)> = {
                let dirty = self.dirty.lock();
                dirty
                    .iter()
                    .filter(|(name, _)| Self::takes(consumer, &self.agents, name) != Takes::No)
                    .map(|(name, d)| (name.clone(), d.generation))
                    .collect()
            };
            if candidates.is_empty() {
                continue;
            }
            let share = free.div_ceil(candidates.len() as u32).max(1);
            let now = Timestamp::now();
            let mut rationed = Vec::with_capacity(candidates.len());
            for (agent, _) in &candidates {
                if let Some(r) = self.demand(agent, share.min(free), now).await {
                    rationed.push(r);
                }
            }
            let request = ClaimRequest {
                worker_id: consumer.config.worker_id,
                worker_name: consumer.config.name.clone(),
                now,
                lease_ms: self.lease_ms,
                demands: rationed.iter().map(|r| r.demand.clone()).collect(),
            };
            let claimed = match self.store.claim_tasks(&request).await {
                Ok(c) => {
                    self.metrics.claimed(&c);
                    c
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming tasks failed");
                    self.release_failed_claim(&request);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    outcome.more = true;
                    return outcome;
                }
            };
            *consumer.last_claim.lock() = std::time::Instant::now();
            self.refund(&rationed, &claimed).await;
            for (agent, _) in &candidates {
                self.advance_cursor(agent, &claimed);
            }
            let mut per_agent: HashMap<&str, u32> = HashMap::new();
            for c in &claimed {
                *per_agent.entry(c.agent.as_str()).or_default() += 1;
            }
            {
                let mut dirty = self.dirty.lock();
                for (agent, generation) in &candidates {
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
