//! In-process metrics: plain atomics, no locks and no allocations per task once an
//! agent's counters exist. Counters only grow; the rollup flusher turns them into
//! per-minute deltas for the database, `/metrics` shows them as they are.
//!
//! Labels are bounded: agents (registered names; past [`MAX_AGENT_SERIES`] they share
//! the series `_other`), outcomes, HTTP route templates (never raw paths), methods and
//! status codes. No task id or user input ever becomes a label.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use parking_lot::RwLock;
use switchyard_core::Timestamp;
use switchyard_core::monitoring::{HISTOGRAM_BUCKETS, latency_bucket};
use switchyard_core::store::{AttemptRef, ClaimedTask, Completion, Outcome, Submitted};
use switchyard_core::task::TaskStatus;

/// Most agents with series of their own; the rest share `_other`.
pub const MAX_AGENT_SERIES: usize = 1_000;
pub const OTHER_AGENT: &str = "_other";
/// Most distinct HTTP route templates tracked (the route table is far smaller).
const MAX_ROUTES: usize = 256;

/// A latency histogram with the fixed buckets of `monitoring::LATENCY_BUCKETS_MS`.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; HISTOGRAM_BUCKETS],
    sum_ms: AtomicU64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub counts: [u64; HISTOGRAM_BUCKETS],
    pub sum_ms: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    pub fn observe_ms(&self, ms: u64) {
        self.counts[latency_bucket(ms)].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(ms, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_ms: self.sum_ms.load(Relaxed),
        }
    }
}

/// Task outcomes, as the `outcome` label.
pub const OUTCOMES: [TaskStatus; 4] = [
    TaskStatus::Succeeded,
    TaskStatus::Failed,
    TaskStatus::Dead,
    TaskStatus::Cancelled,
];

fn outcome_index(status: TaskStatus) -> Option<usize> {
    OUTCOMES.iter().position(|s| *s == status)
}

#[derive(Default)]
pub struct AgentMetrics {
    pub submitted: AtomicU64,
    /// Attempts started (claims).
    pub started: AtomicU64,
    /// Per [`OUTCOMES`].
    pub finished: [AtomicU64; 4],
    pub retries: AtomicU64,
    pub fallbacks: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Runnable → claimed.
    pub wait: Histogram,
    /// Claimed → attempt finished.
    pub run: Histogram,
    /// Submitted → finished for good (end to end).
    pub e2e: Histogram,
}

/// A copy of one agent's counters at an instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentSnapshot {
    pub submitted: u64,
    pub started: u64,
    pub finished: [u64; 4],
    pub retries: u64,
    pub fallbacks: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub wait: HistogramSnapshot,
    pub run: HistogramSnapshot,
    pub e2e: HistogramSnapshot,
}

impl AgentMetrics {
    fn snapshot(&self) -> AgentSnapshot {
        AgentSnapshot {
            submitted: self.submitted.load(Relaxed),
            started: self.started.load(Relaxed),
            finished: std::array::from_fn(|i| self.finished[i].load(Relaxed)),
            retries: self.retries.load(Relaxed),
            fallbacks: self.fallbacks.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            wait: self.wait.snapshot(),
            run: self.run.snapshot(),
            e2e: self.e2e.snapshot(),
        }
    }
}

/// HTTP methods as a label; anything else is `other`.
pub const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "other"];

pub fn method_index(method: &str) -> usize {
    METHODS[..5].iter().position(|m| *m == method).unwrap_or(5)
}

/// Counters of one route template and method.
#[derive(Default)]
pub struct MethodMetrics {
    /// By status code 100-599, allocated on the first request.
    statuses: std::sync::OnceLock<Box<[AtomicU64]>>,
    pub latency: Histogram,
}

impl MethodMetrics {
    fn count(&self, status: u16) {
        let slots = self
            .statuses
            .get_or_init(|| (0..500).map(|_| AtomicU64::new(0)).collect());
        let i = usize::from(status.clamp(100, 599) - 100);
        slots[i].fetch_add(1, Relaxed);
    }

    /// (status, count) of every status seen.
    pub fn statuses(&self) -> Vec<(u16, u64)> {
        let Some(slots) = self.statuses.get() else {
            return Vec::new();
        };
        slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Relaxed);
                (n > 0).then_some((i as u16 + 100, n))
            })
            .collect()
    }
}

#[derive(Default)]
pub struct RouteMetrics {
    pub methods: [MethodMetrics; 6],
}

/// Every in-process metric of one engine.
pub struct Metrics {
    enabled: bool,
    agents: RwLock<HashMap<Arc<str>, Arc<AgentMetrics>>>,
    routes: RwLock<HashMap<Arc<str>, Arc<RouteMetrics>>>,
    pub ws_clients: AtomicI64,
    pub ws_workers: AtomicI64,
    pub sse_streams: AtomicI64,
    /// Open HTTP connections (upgraded WebSockets included): the server's accept loop
    /// counts them, whatever the monitoring switch says.
    pub http_connections: AtomicI64,
    /// The most HTTP connections the server keeps open (`server.max_connections`).
    pub http_max_connections: AtomicI64,
    /// Times every connection slot was taken, so new connections waited in the backlog.
    pub http_connection_limit_reached: AtomicU64,
    /// Audit entries that could not be written (the actions were done without them).
    pub audit_write_failures: Arc<AtomicU64>,
    pub started_at: Timestamp,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(true)
    }
}

impl Metrics {
    /// `enabled: false` turns every recording call into a no-op (for measuring the cost
    /// of monitoring).
    pub fn new(enabled: bool) -> Self {
        Metrics {
            enabled,
            agents: RwLock::new(HashMap::new()),
            routes: RwLock::new(HashMap::new()),
            ws_clients: AtomicI64::new(0),
            ws_workers: AtomicI64::new(0),
            sse_streams: AtomicI64::new(0),
            http_connections: AtomicI64::new(0),
            http_max_connections: AtomicI64::new(0),
            http_connection_limit_reached: AtomicU64::new(0),
            audit_write_failures: Arc::default(),
            started_at: Timestamp::now(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The counters of an agent, created on first use.
    pub fn agent(&self, name: &str) -> Arc<AgentMetrics> {
        if let Some(m) = self.agents.read().get(name) {
            return m.clone();
        }
        let mut agents = self.agents.write();
        if let Some(m) = agents.get(name) {
            return m.clone();
        }
        let key: Arc<str> = if agents.len() >= MAX_AGENT_SERIES {
            Arc::from(OTHER_AGENT)
        } else {
            Arc::from(name)
        };
        agents.entry(key).or_default().clone()
    }

    /// Runs `f` on each item's agent counters, looking each agent up once per run of
    /// equal names (batches are mostly one agent).
    fn each_agent<'a, T>(
        &self,
        items: impl IntoIterator<Item = (&'a str, T)>,
        mut f: impl FnMut(&AgentMetrics, T),
    ) {
        let mut current: Option<(&str, Arc<AgentMetrics>)> = None;
        for (agent, item) in items {
            let m = match &current {
                Some((name, m)) if *name == agent => m.clone(),
                _ => {
                    let m = self.agent(agent);
                    current = Some((agent, m.clone()));
                    m
                }
            };
            f(&m, item);
        }
    }

    /// Tasks the submitter committed (cache hits are inserted already succeeded).
    pub fn submitted(&self, results: &[Submitted]) {
        if !self.enabled {
            return;
        }
        let created = results.iter().filter_map(|s| match s {
            Submitted::Created(t) => Some((t.agent.as_str(), t)),
            Submitted::Existing(_) => None,
        });
        self.each_agent(created, |m, t| {
            m.submitted.fetch_add(1, Relaxed);
            if t.status == TaskStatus::Succeeded {
                m.finished[0].fetch_add(1, Relaxed);
                m.e2e.observe_ms(0);
            }
        });
    }

    /// A result-cache lookup at submission.
    pub fn cache_lookup(&self, agent: &str, hit: bool) {
        if !self.enabled {
            return;
        }
        let m = self.agent(agent);
        if hit {
            m.cache_hits.fetch_add(1, Relaxed);
        } else {
            m.cache_misses.fetch_add(1, Relaxed);
        }
    }

    /// Attempts the dispatcher claimed.
    pub fn claimed(&self, claimed: &[ClaimedTask]) {
        if !self.enabled {
            return;
        }
        self.each_agent(claimed.iter().map(|c| (c.agent.as_str(), c)), |m, c| {
            m.started.fetch_add(1, Relaxed);
            m.wait.observe_ms(c.claimed_at.since(c.run_at));
        });
    }

    /// Attempt results the completer recorded (`rejected` ones did not count).
    pub fn completed(
        &self,
        attempts: &[&AttemptRef],
        completions: &[Completion],
        rejected: &[switchyard_core::TaskId],
        now: Timestamp,
    ) {
        if !self.enabled {
            return;
        }
        let items = attempts
            .iter()
            .zip(completions)
            .filter(|(a, _)| rejected.is_empty() || !rejected.contains(&a.task_id))
            .map(|(a, c)| (a.agent.as_str(), (a, c)));
        let mut fallbacks = Vec::new();
        self.each_agent(items, |m, (a, c)| {
            if let Some(claimed) = a.claimed_at {
                m.run.observe_ms(now.since(claimed));
            }
            let status = match &c.outcome {
                Outcome::Succeeded { .. } => TaskStatus::Succeeded,
                Outcome::Retry { .. } => {
                    m.retries.fetch_add(1, Relaxed);
                    return;
                }
                Outcome::Fallback { fallback, .. } => {
                    m.fallbacks.fetch_add(1, Relaxed);
                    fallbacks.push(fallback.agent.as_str());
                    TaskStatus::Failed
                }
                Outcome::Dead { .. } => TaskStatus::Dead,
                Outcome::Cancelled { .. } => TaskStatus::Cancelled,
            };
            self.finished_with(m, status, a.created_at, now);
        });
        // A fallback is a new task of its agent.
        self.each_agent(fallbacks.into_iter().map(|a| (a, ())), |m, ()| {
            m.submitted.fetch_add(1, Relaxed);
        });
    }

    /// A task that finished outside the completer (cancelled while waiting).
    pub fn finished(&self, agent: &str, status: TaskStatus, created_at: Option<Timestamp>) {
        if !self.enabled {
            return;
        }
        let m = self.agent(agent);
        self.finished_with(&m, status, created_at, Timestamp::now());
    }

    fn finished_with(
        &self,
        m: &AgentMetrics,
        status: TaskStatus,
        created_at: Option<Timestamp>,
        now: Timestamp,
    ) {
        if let Some(i) = outcome_index(status) {
            m.finished[i].fetch_add(1, Relaxed);
            if let Some(created) = created_at {
                m.e2e.observe_ms(now.since(created));
            }
        }
    }

    /// One HTTP request, by route template (`/api/v1/tasks/{id}`), method and status.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed_ms: u64) {
        if !self.enabled {
            return;
        }
        let existing = self.routes.read().get(route).cloned();
        let r = match existing {
            Some(r) => r,
            None => {
                let mut routes = self.routes.write();
                let key = if routes.len() >= MAX_ROUTES && !routes.contains_key(route) {
                    "other"
                } else {
                    route
                };
                routes.entry(Arc::from(key)).or_default().clone()
            }
        };
        let m = &r.methods[method_index(method)];
        m.count(status);
        m.latency.observe_ms(elapsed_ms);
    }

    /// Every agent's counters, sorted by agent.
    pub fn agent_snapshots(&self) -> Vec<(Arc<str>, AgentSnapshot)> {
        let mut out: Vec<(Arc<str>, AgentSnapshot)> = self
            .agents
            .read()
            .iter()
            .map(|(name, m)| (name.clone(), m.snapshot()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every route's counters, sorted by route.
    pub fn routes(&self) -> Vec<(Arc<str>, Arc<RouteMetrics>)> {
        let mut out: Vec<(Arc<str>, Arc<RouteMetrics>)> = self
            .routes
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Holds a gauge up while alive (a WebSocket connection, an SSE stream).
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A [`GaugeGuard`] that holds the metrics it counts in, for a value that outlives the
/// scope that made it (a response body).
pub struct OwnedGaugeGuard {
    metrics: Arc<Metrics>,
    gauge: fn(&Metrics) -> &AtomicI64,
}

impl OwnedGaugeGuard {
    pub fn new(metrics: Arc<Metrics>, gauge: fn(&Metrics) -> &AtomicI64) -> Self {
        gauge(&metrics).fetch_add(1, Relaxed);
        OwnedGaugeGuard { metrics, gauge }
    }
}

impl Drop for OwnedGaugeGuard {
    fn drop(&mut self) {
        (self.gauge)(&self.metrics).fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_bucket_and_sum() {
        let h = Histogram::default();
        h.observe_ms(0);
        h.observe_ms(7);
        h.observe_ms(7_200_000);
        let s = h.snapshot();
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_ms, 7_200_007);
        assert_eq!(s.counts[latency_bucket(7)], 1);
        assert_eq!(s.counts[HISTOGRAM_BUCKETS - 1], 1);
    }

    #[test]
    fn agent_series_are_bounded() {
        let m = Metrics::new(true);
        for i in 0..MAX_AGENT_SERIES + 10 {
            m.cache_lookup(&format!("a{i}"), true);
        }
        let snaps = m.agent_snapshots();
        assert_eq!(snaps.len(), MAX_AGENT_SERIES + 1);
        let other = snaps.iter().find(|(n, _)| &**n == OTHER_AGENT).unwrap();
        assert_eq!(other.1.cache_hits, 10);
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let m = Metrics::new(false);
        m.cache_lookup("a", true);
        m.http_request("/x", "GET", 200, 1);
        assert!(m.agent_snapshots().is_empty());
        assert!(m.routes().is_empty());
    }

    #[test]
    fn http_counts_by_route_method_status() {
        let m = Metrics::new(true);
        m.http_request("/api/v1/tasks", "POST", 201, 3);
        m.http_request("/api/v1/tasks", "POST", 201, 3);
        m.http_request("/api/v1/tasks", "POST", 422, 1);
        m.http_request("/api/v1/tasks", "BREW", 999, 1);
        let routes = m.routes();
        let post = &routes[0].1.methods[method_index("POST")];
        assert_eq!(post.statuses(), vec![(201, 2), (422, 1)]);
        assert_eq!(post.latency.snapshot().count(), 3);
        assert_eq!(routes[0].1.methods[5].statuses(), vec![(599, 1)]);
    }
}
