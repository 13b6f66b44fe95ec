//! The monitoring model: latency histograms with fixed, mergeable buckets, stored metric
//! rollups, alert rules and their events, and per-agent reports.
//!
//! Histograms keep one count per bucket (not cumulative), so histograms from several
//! processes or several minutes merge by adding counts, and percentiles are read off the
//! merged counts (linear interpolation inside the bucket, as Prometheus'
//! `histogram_quantile` does) rather than averaged.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::TaskId;
use crate::time::Timestamp;

/// Upper bounds (inclusive, milliseconds) of the latency buckets; one more bucket
/// (`+Inf`) follows the last.
pub const LATENCY_BUCKETS_MS: [u64; 18] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
    900_000, 3_600_000,
];

/// Buckets per histogram, `+Inf` included.
pub const HISTOGRAM_BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// The bucket a latency of `ms` falls in.
pub fn latency_bucket(ms: u64) -> usize {
    LATENCY_BUCKETS_MS.partition_point(|bound| *bound < ms)
}

/// The `q`-quantile (0 < q ≤ 1) in milliseconds of a histogram given as per-bucket counts,
/// interpolating linearly inside the bucket. `None` when the histogram is empty.
/// Observations in the `+Inf` bucket count as the last finite bound.
pub fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, count) in counts.iter().enumerate() {
        let count = *count;
        if count == 0 {
            continue;
        }
        if (seen + count) as f64 >= rank {
            let Some(upper) = LATENCY_BUCKETS_MS.get(i) else {
                return Some(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1] as f64);
            };
            let lower = if i == 0 {
                0.0
            } else {
                LATENCY_BUCKETS_MS[i - 1] as f64
            };
            let within = ((rank - seen as f64) / count as f64).clamp(0.0, 1.0);
            return Some(lower + (*upper as f64 - lower) * within);
        }
        seen += count;
    }
    Some(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1] as f64)
}

/// Stored resolutions: one-minute buckets, downsampled to one-hour buckets when older
/// than their retention.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;

/// The start of the bucket of `resolution_ms` that holds `at`.
pub fn bucket_start(at: Timestamp, resolution_ms: i64) -> Timestamp {
    Timestamp::from_millis(at.millis().div_euclid(resolution_ms) * resolution_ms)
}

/// The smallest task id that a task created at `at` or later can have (task ids are
/// UUIDv7: their first 48 bits are the creation time in milliseconds). Lets "tasks
/// created in [from, to)" use the primary key instead of an index on `created_at`.
pub fn task_id_floor(at: Timestamp) -> TaskId {
    let ms = u64::try_from(at.millis().max(0)).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    TaskId(Uuid::from_u128(u128::from(ms) << 80))
}

/// Names of the stored series (the `metric` column of `metric_rollups`).
pub mod series {
    pub const TASKS_SUBMITTED: &str = "tasks_submitted";
    pub const TASKS_STARTED: &str = "tasks_started";
    pub const TASKS_SUCCEEDED: &str = "tasks_succeeded";
    /// Failed for good and handed to a fallback.
    pub const TASKS_FAILED: &str = "tasks_failed";
    pub const TASKS_DEAD: &str = "tasks_dead";
    pub const TASKS_CANCELLED: &str = "tasks_cancelled";
    pub const RETRIES: &str = "retries";
    pub const FALLBACKS: &str = "fallbacks";
    pub const CACHE_HITS: &str = "cache_hits";
    pub const CACHE_MISSES: &str = "cache_misses";
    pub const HTTP_REQUESTS: &str = "http_requests";
    pub const HTTP_ERRORS: &str = "http_errors";
    /// Histograms (one row per bucket).
    pub const LATENCY_E2E: &str = "latency_e2e";
    pub const LATENCY_WAIT: &str = "latency_wait";
    pub const LATENCY_RUN: &str = "latency_run";
    /// Gauges, sampled by the process that runs the cluster duties.
    pub const QUEUE_READY: &str = "queue_ready";
    pub const QUEUE_SCHEDULED: &str = "queue_scheduled";
    pub const QUEUE_RUNNING: &str = "queue_running";
    pub const QUEUE_OLDEST_AGE_S: &str = "queue_oldest_age_s";
    pub const WORKERS: &str = "workers";

    pub const GAUGES: [&str; 5] = [
        QUEUE_READY,
        QUEUE_SCHEDULED,
        QUEUE_RUNNING,
        QUEUE_OLDEST_AGE_S,
        WORKERS,
    ];

    pub fn is_gauge(metric: &str) -> bool {
        GAUGES.contains(&metric)
    }
}

/// One stored value: a counter delta, a gauge sample or one histogram bucket's count.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    pub metric: String,
    /// Empty for series that belong to no agent.
    pub agent: String,
    /// The histogram bucket, or `-1` for counters and gauges.
    pub bucket: i32,
    pub value: f64,
}

impl MetricPoint {
    pub fn new(metric: &str, agent: &str, value: f64) -> Self {
        MetricPoint {
            metric: metric.to_owned(),
            agent: agent.to_owned(),
            bucket: -1,
            value,
        }
    }
}

/// A stored value with its bucket time.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub bucket_start: Timestamp,
    pub metric: String,
    pub agent: String,
    pub bucket: i32,
    pub value: f64,
}

/// Which stored rows to read.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRowQuery {
    pub metrics: Vec<String>,
    /// Only this agent; `None`: every agent.
    pub agent: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    /// 60 or 3600.
    pub resolution_s: u32,
}

/// The built-in alert rule kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Failed or dead tasks / finished tasks, among the tasks that finished in the last
    /// `window_s` (a fraction, 0-1, from the one-minute rollups). Fires above the threshold.
    FailureRate,
    /// Tasks waiting (runnable or scheduled). Fires above the threshold.
    QueueDepth,
    /// Age in seconds of the oldest runnable task. Fires above the threshold.
    OldestTaskAge,
    /// Live workers that serve the agent. Fires when at most the threshold (0: none).
    NoWorker,
    /// Seconds since the last successful backup (since the rule was created, when there
    /// has been none). Fires above the threshold. Ignores `agent`.
    BackupAge,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::FailureRate => "failure_rate",
            AlertKind::QueueDepth => "queue_depth",
            AlertKind::OldestTaskAge => "oldest_task_age",
            AlertKind::NoWorker => "no_worker",
            AlertKind::BackupAge => "backup_age",
        }
    }

    /// Whether `value` breaches `threshold` for this kind.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            AlertKind::NoWorker => value <= threshold,
            _ => value > threshold,
        }
    }
}

/// Longest `window_s` / `for_s` of a rule: a week.
pub const MAX_ALERT_WINDOW_S: u64 = 7 * 86_400;
pub const MAX_ALERT_NAME_LEN: usize = 200;
pub const MAX_WEBHOOK_URL_LEN: usize = 2_048;

/// What defines an alert rule (the body of `POST /api/v1/alerts/rules`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    pub name: String,
    pub kind: AlertKind,
    /// Only this agent; absent: all agents (required for `no_worker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub threshold: f64,
    /// The lookback window in seconds (`failure_rate` counts tasks submitted in it).
    pub window_s: u64,
    /// The condition must hold this long before the rule fires. Default 0.
    #[serde(default)]
    pub for_s: u64,
    /// Where to POST firing and resolved notifications (Slack-compatible JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl AlertRuleSpec {
    /// Checks every field, listing each problem.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.len() > MAX_ALERT_NAME_LEN {
            problems.push(format!("name must be 1-{MAX_ALERT_NAME_LEN} characters"));
        }
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            problems.push("threshold must be a finite number ≥ 0".to_owned());
        }
        if self.kind == AlertKind::FailureRate && self.threshold > 1.0 {
            problems.push("a failure_rate threshold is a fraction between 0 and 1".to_owned());
        }
        if self.window_s == 0 || self.window_s > MAX_ALERT_WINDOW_S {
            problems.push(format!(
                "window_s must be between 1 and {MAX_ALERT_WINDOW_S}"
            ));
        }
        if self.for_s > MAX_ALERT_WINDOW_S {
            problems.push(format!("for_s must be at most {MAX_ALERT_WINDOW_S}"));
        }
        match &self.agent {
            Some(a) if a.trim().is_empty() => problems.push("agent must not be empty".to_owned()),
            None if self.kind == AlertKind::NoWorker => {
                problems.push("a no_worker rule needs an agent".to_owned())
            }
            _ => {}
        }
        if let Some(url) = &self.webhook_url {
            let ok = url.len() <= MAX_WEBHOOK_URL_LEN
                && url::Url::parse(url)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                problems.push("webhook_url must be an http(s) URL".to_owned());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::new(ErrorCode::ValidationFailed, problems.join("; "))
                .with_details(serde_json::json!({ "problems": problems })))
        }
    }
}

/// Where a rule stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    #[default]
    Ok,
    /// Breached, waiting for `for_s` to pass.
    Pending,
    Firing,
}

/// The evaluator's memory of a rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertState {
    pub status: AlertStatus,
    /// When the current breach started (pending or firing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<Timestamp>,
}

/// A rule with its state. Clients see it as `switchyard_api::views::AlertRuleView`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: AlertRuleSpec,
    pub state: AlertState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEventState {
    Firing,
    Resolved,
}

impl AlertEventState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEventState::Firing => "firing",
            AlertEventState::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for AlertEventState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "firing" => Ok(AlertEventState::Firing),
            "resolved" => Ok(AlertEventState::Resolved),
            _ => Err(format!("unknown alert state {s:?}")),
        }
    }
}

/// Delivery of an event's webhook notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyStatus {
    /// The rule has no webhook.
    None,
    /// Waiting for its (next) attempt.
    Pending,
    Sent,
    /// Gave up (permanent error or out of attempts).
    Failed,
}

impl NotifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyStatus::None => "none",
            NotifyStatus::Pending => "pending",
            NotifyStatus::Sent => "sent",
            NotifyStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for NotifyStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(NotifyStatus::None),
            "pending" => Ok(NotifyStatus::Pending),
            "sent" => Ok(NotifyStatus::Sent),
            "failed" => Ok(NotifyStatus::Failed),
            _ => Err(format!("unknown notification status {s:?}")),
        }
    }
}

/// A rule started or stopped firing. Clients see it as
/// `switchyard_api::views::AlertEventView` (without the webhook and the delivery schedule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub kind: AlertKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub state: AlertEventState,
    pub value: f64,
    pub threshold: f64,
    pub at: Timestamp,
    pub message: String,
    /// Not shown to clients: it may hold a secret token.
    #[serde(skip)]
    pub webhook_url: Option<String>,
    pub notify_status: NotifyStatus,
    pub notify_attempts: u32,
    #[serde(skip)]
    pub next_notify_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_error: Option<String>,
}

/// Filters for listing alert events; newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertEventQuery {
    pub rule_id: Option<Uuid>,
    /// Cursor: only events with a smaller id (older).
    pub before_id: Option<Uuid>,
    pub limit: u32,
}

/// A delivery attempt's result, to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyUpdate {
    pub event_id: Uuid,
    pub status: NotifyStatus,
    pub attempts: u32,
    pub next_at: Option<Timestamp>,
    pub error: Option<String>,
}

/// Per-agent figures over the tasks submitted in a period, straight from the tasks table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentReportRow {
    pub agent: String,
    pub tasks: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead: u64,
    pub cancelled: u64,
    /// Attempts beyond each task's first.
    pub retries: u64,
    /// Tasks handed to a fallback agent.
    pub fallbacks: u64,
    /// Tasks answered from the result cache.
    pub cached: u64,
    /// Submit → finish latency of the finished tasks, per bucket.
    pub latency_buckets: Vec<u64>,
    /// Language-model usage, when any succeeded task's output reported it.
    pub usage: Option<UsageTotals>,
}

/// Sums of the `usage` the outputs of an agent's succeeded tasks reported (the `llm`
/// kind's `{prompt_tokens, completion_tokens, cost?}`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageTotals {
    /// Tasks that reported usage.
    pub tasks: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// In the currency of the agent's `price_per_1k_tokens`; `None` when no task had prices.
    pub cost: Option<f64>,
}

/// Filters for a task's log lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogQuery {
    pub task_id: TaskId,
    pub after_seq: u64,
    /// Only lines at this level or above.
    pub min_level: Option<crate::event::LogLevel>,
    /// Only lines containing this text (case-insensitive).
    pub contains: Option<String>,
    pub limit: u32,
}

/// The words of `text` as search sees them, before lowercasing: runs of letters and
/// digits, each cut to its first 64 characters. Documents are indexed and queries split
/// with this one rule, so both backends match alike.
pub fn search_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| match w.char_indices().nth(64) {
            Some((end, _)) => &w[..end],
            None => w,
        })
}

/// Words of a search query: [`search_words`] lowercased, at most 16 of them.
pub fn search_terms(q: &str) -> Vec<String> {
    search_words(q).take(16).map(str::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 0);
        assert_eq!(latency_bucket(2), 1);
        assert_eq!(latency_bucket(5), 2);
        assert_eq!(latency_bucket(6), 3);
        assert_eq!(latency_bucket(1_000), 9);
        assert_eq!(latency_bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let mut counts = vec![0u64; HISTOGRAM_BUCKETS];
        assert_eq!(quantile(&counts, 0.5), None);
        // 100 observations in (50, 100] ms.
        counts[latency_bucket(80)] = 100;
        assert_eq!(quantile(&counts, 0.5), Some(75.0));
        assert_eq!(quantile(&counts, 1.0), Some(100.0));
        // 900 fast ones in [0, 1]: p50 is fast, p99 in the slow bucket.
        counts[0] = 900;
        assert!(quantile(&counts, 0.5).unwrap() <= 1.0);
        let p99 = quantile(&counts, 0.99).unwrap();
        assert!(p99 > 50.0 && p99 <= 100.0, "{p99}");
        counts[HISTOGRAM_BUCKETS - 1] = 10_000;
        assert_eq!(quantile(&counts, 0.99), Some(3_600_000.0));
    }

    #[test]
    fn task_id_floor_orders_like_v7_ids() {
        let at = Timestamp::from_millis(1_800_000_000_000);
        let id = TaskId(Uuid::now_v7());
        assert!(task_id_floor(Timestamp::now().minus_ms(1_000)) < id);
        assert!(task_id_floor(Timestamp::now().plus_ms(1_000)) > id);
        assert!(task_id_floor(at) < task_id_floor(at.plus_ms(1)));
    }

    #[test]
    fn rule_validation_lists_problems() {
        let spec = AlertRuleSpec {
            name: "".into(),
            kind: AlertKind::NoWorker,
            agent: None,
            threshold: -1.0,
            window_s: 0,
            for_s: 0,
            webhook_url: Some("ftp://x".into()),
        };
        let err = spec.validate().unwrap_err();
        assert!(err.message.contains("name"), "{}", err.message);
        assert!(err.message.contains("needs an agent"));
        assert!(err.message.contains("webhook_url"));
    }

    #[test]
    fn search_terms_are_words() {
        assert_eq!(
            search_terms("Hello, wörld! a-b \"x"),
            vec!["hello", "wörld", "a", "b", "x"]
        );
        assert!(search_terms("  ,;  ").is_empty());
    }
}
