//! The metric aggregator: every process adds the deltas of its in-memory counters to the
//! one-minute rows in the database (so the stored series covers the whole cluster: rows
//! are sums over processes), and the `/api/v1/metrics/series` query that re-buckets them
//! into the requested step.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use switchyard_core::monitoring::{
    HISTOGRAM_BUCKETS, HOUR_MS, MINUTE_MS, MetricPoint, MetricRowQuery, bucket_start, quantile,
    series,
};
use switchyard_core::{Error, Result, Timestamp};
use utoipa::ToSchema;

use super::metrics::{AgentSnapshot, HistogramSnapshot, Metrics, OUTCOMES};
use switchyard_core::task::TaskStatus;

/// What the flusher wrote last: deltas are taken against it.
#[derive(Default)]
pub struct FlushState {
    agents: HashMap<Arc<str>, AgentSnapshot>,
    http_requests: u64,
    http_errors: u64,
}

fn counter_points(
    out: &mut Vec<MetricPoint>,
    agent: &str,
    now: &AgentSnapshot,
    last: &AgentSnapshot,
) {
    let outcome_metric = |s: TaskStatus| match s {
        TaskStatus::Succeeded => series::TASKS_SUCCEEDED,
        TaskStatus::Failed => series::TASKS_FAILED,
        TaskStatus::Dead => series::TASKS_DEAD,
        _ => series::TASKS_CANCELLED,
    };
    let mut counters = vec![
        (series::TASKS_SUBMITTED, now.submitted, last.submitted),
        (series::TASKS_STARTED, now.started, last.started),
        (series::RETRIES, now.retries, last.retries),
        (series::FALLBACKS, now.fallbacks, last.fallbacks),
        (series::CACHE_HITS, now.cache_hits, last.cache_hits),
        (series::CACHE_MISSES, now.cache_misses, last.cache_misses),
    ];
    for (i, s) in OUTCOMES.iter().enumerate() {
        counters.push((outcome_metric(*s), now.finished[i], last.finished[i]));
    }
    for (metric, n, l) in counters {
        if n > l {
            out.push(MetricPoint::new(metric, agent, (n - l) as f64));
        }
    }
    let hists: [(&str, &HistogramSnapshot, &HistogramSnapshot); 3] = [
        (series::LATENCY_E2E, &now.e2e, &last.e2e),
        (series::LATENCY_WAIT, &now.wait, &last.wait),
        (series::LATENCY_RUN, &now.run, &last.run),
    ];
    for (metric, n, l) in hists {
        for b in 0..HISTOGRAM_BUCKETS {
            if n.counts[b] > l.counts[b] {
                out.push(MetricPoint {
                    metric: metric.to_owned(),
                    agent: agent.to_owned(),
                    bucket: b as i32,
                    value: (n.counts[b] - l.counts[b]) as f64,
                });
            }
        }
    }
}

/// The deltas since `state`, and the state to keep once they are stored.
pub fn deltas(metrics: &Metrics, state: &FlushState) -> (Vec<MetricPoint>, FlushState) {
    let mut points = Vec::new();
    let agents = metrics.agent_snapshots();
    let empty = AgentSnapshot::default();
    for (name, snap) in &agents {
        let last = state.agents.get(name).unwrap_or(&empty);
        counter_points(&mut points, name, snap, last);
    }
    let (mut requests, mut errors) = (0u64, 0u64);
    for (_, route) in metrics.routes() {
        for m in &route.methods {
            for (status, n) in m.statuses() {
                requests += n;
                if status >= 500 {
                    errors += n;
                }
            }
        }
    }
    if requests > state.http_requests {
        points.push(MetricPoint::new(
            series::HTTP_REQUESTS,
            "",
            (requests - state.http_requests) as f64,
        ));
    }
    if errors > state.http_errors {
        points.push(MetricPoint::new(
            series::HTTP_ERRORS,
            "",
            (errors - state.http_errors) as f64,
        ));
    }
    let next = FlushState {
        agents: agents.into_iter().collect(),
        http_requests: requests,
        http_errors: errors,
    };
    (points, next)
}

/// How a series is computed from stored rows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Sum of these counters per step.
    Count(&'static [&'static str]),
    /// numerator / denominator counters per step.
    Ratio(&'static [&'static str], &'static [&'static str]),
    /// A quantile of this histogram per step, in milliseconds.
    Quantile(&'static str, f64),
    /// Gauges summed over agents, then the maximum over the step.
    GaugeSum(&'static [&'static str]),
    /// The maximum over agents and over the step.
    GaugeMax(&'static str),
}

const FINISHED: &[&str] = &[
    series::TASKS_SUCCEEDED,
    series::TASKS_FAILED,
    series::TASKS_DEAD,
    series::TASKS_CANCELLED,
];
const FAILED: &[&str] = &[series::TASKS_FAILED, series::TASKS_DEAD];
const LOOKUPS: &[&str] = &[series::CACHE_HITS, series::CACHE_MISSES];

/// Every series `/api/v1/metrics/series` knows: name, how to compute it, unit.
const SERIES: &[(&str, Kind, &str)] = &[
    (
        "tasks_submitted",
        Kind::Count(&[series::TASKS_SUBMITTED]),
        "tasks",
    ),
    (
        "tasks_started",
        Kind::Count(&[series::TASKS_STARTED]),
        "attempts",
    ),
    ("tasks_finished", Kind::Count(FINISHED), "tasks"),
    (
        "tasks_succeeded",
        Kind::Count(&[series::TASKS_SUCCEEDED]),
        "tasks",
    ),
    ("tasks_failed", Kind::Count(FAILED), "tasks"),
    ("tasks_dead", Kind::Count(&[series::TASKS_DEAD]), "tasks"),
    (
        "tasks_cancelled",
        Kind::Count(&[series::TASKS_CANCELLED]),
        "tasks",
    ),
    ("retries", Kind::Count(&[series::RETRIES]), "attempts"),
    ("fallbacks", Kind::Count(&[series::FALLBACKS]), "tasks"),
    ("cache_hits", Kind::Count(&[series::CACHE_HITS]), "lookups"),
    (
        "cache_misses",
        Kind::Count(&[series::CACHE_MISSES]),
        "lookups",
    ),
    (
        "http_requests",
        Kind::Count(&[series::HTTP_REQUESTS]),
        "requests",
    ),
    (
        "http_errors",
        Kind::Count(&[series::HTTP_ERRORS]),
        "requests",
    ),
    ("failure_rate", Kind::Ratio(FAILED, FINISHED), "ratio"),
    (
        "cache_hit_rate",
        Kind::Ratio(&[series::CACHE_HITS], LOOKUPS),
        "ratio",
    ),
    (
        "latency_p50",
        Kind::Quantile(series::LATENCY_E2E, 0.50),
        "ms",
    ),
    (
        "latency_p95",
        Kind::Quantile(series::LATENCY_E2E, 0.95),
        "ms",
    ),
    (
        "latency_p99",
        Kind::Quantile(series::LATENCY_E2E, 0.99),
        "ms",
    ),
    ("wait_p50", Kind::Quantile(series::LATENCY_WAIT, 0.50), "ms"),
    ("wait_p95", Kind::Quantile(series::LATENCY_WAIT, 0.95), "ms"),
    ("wait_p99", Kind::Quantile(series::LATENCY_WAIT, 0.99), "ms"),
    ("run_p50", Kind::Quantile(series::LATENCY_RUN, 0.50), "ms"),
    ("run_p95", Kind::Quantile(series::LATENCY_RUN, 0.95), "ms"),
    ("run_p99", Kind::Quantile(series::LATENCY_RUN, 0.99), "ms"),
    (
        "queue_depth",
        Kind::GaugeSum(&[series::QUEUE_READY, series::QUEUE_SCHEDULED]),
        "tasks",
    ),
    (
        "queue_ready",
        Kind::GaugeSum(&[series::QUEUE_READY]),
        "tasks",
    ),
    (
        "queue_running",
        Kind::GaugeSum(&[series::QUEUE_RUNNING]),
        "tasks",
    ),
    (
        "oldest_task_age",
        Kind::GaugeMax(series::QUEUE_OLDEST_AGE_S),
        "seconds",
    ),
    ("workers", Kind::GaugeMax(series::WORKERS), "workers"),
];

/// The names `metric=` accepts.
pub fn series_names() -> Vec<&'static str> {
    SERIES.iter().map(|(n, _, _)| *n).collect()
}

/// Most points one query returns.
pub const MAX_POINTS: i64 = 10_000;

#[derive(Clone, Debug, PartialEq)]
pub struct SeriesQuery {
    pub metric: String,
    pub agent: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub step_s: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the step, Unix seconds.
    pub t: i64,
    /// `null` when there is nothing to compute from (a percentile or ratio of no tasks).
    pub v: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Series {
    pub metric: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Unix seconds.
    pub from: i64,
    pub to: i64,
    /// Seconds per point.
    pub step: u64,
    /// `tasks`, `attempts`, `requests`, `lookups` (counts per step), `ratio` (0-1), `ms`,
    /// `seconds` or `workers`.
    pub unit: &'static str,
    pub points: Vec<SeriesPoint>,
}

/// Checks a query and returns the stored metrics it reads.
fn plan(q: &SeriesQuery) -> Result<(Kind, &'static str, Vec<String>)> {
    let Some((_, kind, unit)) = SERIES.iter().find(|(n, _, _)| *n == q.metric) else {
        return Err(Error::invalid_parameter(format!(
            "unknown metric {:?}; expected one of: {}",
            q.metric,
            series_names().join(", ")
        )));
    };
    if q.step_s < 60 {
        return Err(Error::invalid_parameter(
            "step must be at least 60 seconds (the rollup resolution)",
        ));
    }
    if q.to <= q.from {
        return Err(Error::invalid_parameter("`to` must be after `from`"));
    }
    let points = (q.to.millis() - q.from.millis()) / (q.step_s as i64 * 1_000);
    if points > MAX_POINTS {
        return Err(Error::invalid_parameter(format!(
            "that is {points} points; at most {MAX_POINTS} per query (use a larger step)"
        )));
    }
    let metrics: Vec<&str> = match kind {
        Kind::Count(m) | Kind::GaugeSum(m) => m.to_vec(),
        Kind::Ratio(a, b) => a.iter().chain(b.iter()).copied().collect(),
        Kind::Quantile(m, _) | Kind::GaugeMax(m) => vec![m],
    };
    let mut metrics: Vec<String> = metrics.into_iter().map(str::to_owned).collect();
    metrics.sort();
    metrics.dedup();
    Ok((*kind, unit, metrics))
}

pub async fn query(store: &dyn switchyard_core::store::Store, q: &SeriesQuery) -> Result<Series> {
    let (kind, unit, metrics) = plan(q)?;
    let step_ms = q.step_s as i64 * 1_000;
    let from = Timestamp::from_millis(q.from.millis().div_euclid(step_ms) * step_ms);
    let to = q.to;
    // Minute rows, and the hour rows that older minutes were folded into (folded minutes
    // are deleted, so nothing counts twice).
    let mut rows = Vec::new();
    for (resolution_s, align) in [(60u32, MINUTE_MS), (3600, HOUR_MS)] {
        rows.extend(
            store
                .metric_rows(&MetricRowQuery {
                    metrics: metrics.clone(),
                    agent: q.agent.clone(),
                    from: bucket_start(from, align),
                    to,
                    resolution_s,
                })
                .await?,
        );
    }
    let steps = ((to.millis() - from.millis()) + step_ms - 1) / step_ms;
    let mut windows: Vec<Window> = (0..steps).map(|_| Window::default()).collect();
    for r in rows {
        let i = (r.bucket_start.millis() - from.millis()).div_euclid(step_ms);
        let Some(w) = usize::try_from(i).ok().and_then(|i| windows.get_mut(i)) else {
            continue;
        };
        w.add(&r.metric, r.bucket, r.bucket_start.millis(), r.value);
    }
    let points = windows
        .iter()
        .enumerate()
        .map(|(i, w)| SeriesPoint {
            t: (from.millis() + i as i64 * step_ms) / 1_000,
            v: w.value(kind),
        })
        .collect();
    Ok(Series {
        metric: q.metric.clone(),
        agent: q.agent.clone(),
        from: from.millis() / 1_000,
        to: to.millis() / 1_000,
        step: q.step_s,
        unit,
        points,
    })
}

/// The rows of one step.
#[derive(Default)]
struct Window {
    sums: HashMap<String, f64>,
    histogram: Vec<u64>,
    /// Gauge samples summed per bucket time (over agents and metrics).
    gauge_sum: BTreeMap<i64, f64>,
    gauge_max: Option<f64>,
}

impl Window {
    fn add(&mut self, metric: &str, bucket: i32, at: i64, value: f64) {
        if series::is_gauge(metric) {
            *self.gauge_sum.entry(at).or_default() += value;
            self.gauge_max = Some(self.gauge_max.map_or(value, |m| m.max(value)));
        } else if bucket >= 0 {
            if self.histogram.is_empty() {
                self.histogram = vec![0; HISTOGRAM_BUCKETS];
            }
            if let Some(slot) = self.histogram.get_mut(bucket as usize) {
                *slot += value.max(0.0) as u64;
            }
        } else {
            *self.sums.entry(metric.to_owned()).or_default() += value;
        }
    }

    fn sum(&self, metrics: &[&str]) -> f64 {
        metrics.iter().filter_map(|m| self.sums.get(*m)).sum()
    }

    fn value(&self, kind: Kind) -> Option<f64> {
        match kind {
            Kind::Count(m) => Some(self.sum(m)),
            Kind::Ratio(num, den) => {
                let d = self.sum(den);
                (d > 0.0).then(|| self.sum(num) / d)
            }
            Kind::Quantile(_, q) => {
                if self.histogram.is_empty() {
                    None
                } else {
                    quantile(&self.histogram, q)
                }
            }
            Kind::GaugeSum(_) => self.gauge_sum.values().copied().reduce(f64::max),
            Kind::GaugeMax(_) => self.gauge_max,
        }
    }
}

/// Failed (or dead) over finished tasks of the last `window_s`, from the minute rows
/// (the current, partial minute included). `None` when nothing finished.
pub async fn failure_rate(
    store: &dyn switchyard_core::store::Store,
    agent: Option<&str>,
    window_s: u64,
    now: Timestamp,
) -> Result<Option<f64>> {
    let rows = store
        .metric_rows(&MetricRowQuery {
            metrics: FINISHED.iter().map(|m| (*m).to_owned()).collect(),
            agent: agent.map(str::to_owned),
            from: bucket_start(now.minus_ms(window_s.saturating_mul(1_000)), MINUTE_MS),
            to: now.plus_ms(MINUTE_MS as u64),
            resolution_s: 60,
        })
        .await?;
    let (mut failed, mut finished) = (0.0, 0.0);
    for r in rows {
        finished += r.value;
        if FAILED.contains(&r.metric.as_str()) {
            failed += r.value;
        }
    }
    Ok((finished > 0.0).then(|| failed / finished))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::monitoring::latency_bucket;

    fn q(metric: &str, step_s: u64) -> SeriesQuery {
        SeriesQuery {
            metric: metric.into(),
            agent: None,
            from: Timestamp::from_millis(0),
            to: Timestamp::from_millis(3_600_000),
            step_s,
        }
    }

    #[test]
    fn queries_are_checked() {
        assert!(plan(&q("tasks_submitted", 60)).is_ok());
        assert!(
            plan(&q("nope", 60))
                .unwrap_err()
                .message
                .contains("latency_p95")
        );
        assert!(plan(&q("tasks_submitted", 59)).is_err());
        let mut backwards = q("tasks_submitted", 60);
        backwards.to = backwards.from;
        assert!(plan(&backwards).is_err());
        let mut huge = q("tasks_submitted", 60);
        huge.to = Timestamp::from_millis(60_000 * (MAX_POINTS + 1));
        assert!(plan(&huge).is_err());
    }

    #[test]
    fn windows_compute_each_kind() {
        let mut w = Window::default();
        w.add(series::TASKS_SUCCEEDED, -1, 0, 6.0);
        w.add(series::TASKS_DEAD, -1, 60_000, 2.0);
        w.add(series::TASKS_FAILED, -1, 0, 2.0);
        for _ in 0..10 {
            w.add(series::LATENCY_E2E, latency_bucket(80) as i32, 0, 10.0);
        }
        w.add(series::QUEUE_READY, -1, 0, 3.0);
        w.add(series::QUEUE_SCHEDULED, -1, 0, 4.0);
        w.add(series::QUEUE_READY, -1, 60_000, 5.0);
        assert_eq!(w.value(Kind::Count(FINISHED)), Some(10.0));
        assert_eq!(w.value(Kind::Ratio(FAILED, FINISHED)), Some(0.4));
        assert_eq!(
            w.value(Kind::Quantile(series::LATENCY_E2E, 0.5)),
            Some(75.0)
        );
        assert_eq!(
            w.value(Kind::GaugeSum(&[
                series::QUEUE_READY,
                series::QUEUE_SCHEDULED
            ])),
            Some(7.0),
            "summed per minute, then the maximum"
        );
        let empty = Window::default();
        assert_eq!(empty.value(Kind::Ratio(FAILED, FINISHED)), None);
        assert_eq!(empty.value(Kind::Quantile(series::LATENCY_E2E, 0.5)), None);
    }

    #[test]
    fn deltas_are_taken_against_the_last_flush() {
        let m = Metrics::new(true);
        m.cache_lookup("a", true);
        m.http_request("/x", "GET", 503, 2);
        let (points, state) = deltas(&m, &FlushState::default());
        assert!(points.contains(&MetricPoint::new(series::CACHE_HITS, "a", 1.0)));
        assert!(points.contains(&MetricPoint::new(series::HTTP_ERRORS, "", 1.0)));
        let (again, _) = deltas(&m, &state);
        assert!(again.is_empty(), "{again:?}");
        m.cache_lookup("a", true);
        let (more, _) = deltas(&m, &state);
        assert_eq!(more, vec![MetricPoint::new(series::CACHE_HITS, "a", 1.0)]);
    }
}
