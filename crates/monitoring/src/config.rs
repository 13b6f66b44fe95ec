//! Monitoring settings (`[monitoring]`, `SWITCHYARD__MONITORING__*`).

use serde::{Deserialize, Serialize};

/// Metrics, rollups, alerts, reports, search indexing and retention
/// (`[monitoring]`, `SWITCHYARD__MONITORING__*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Record metrics, roll them up and evaluate alerts. Off: `/metrics` shows only
    /// process figures and the time series stay empty (for measuring the overhead).
    pub enabled: bool,
    /// Serve `/metrics` without a credential (e.g. for a Prometheus on a private network).
    /// Otherwise it needs a token or API key with the `read` scope.
    pub public_metrics: bool,
    /// How often each process adds its metric deltas to the one-minute rollups, and the
    /// cluster-duty process samples queue gauges.
    pub rollup_interval_ms: u64,
    /// One-minute buckets are kept this long, then folded into one-hour buckets.
    pub minute_retention_h: u64,
    /// One-hour buckets are kept this long.
    pub hour_retention_days: u64,
    /// How often alert rules are evaluated (by the cluster-duty process).
    pub alert_interval_ms: u64,
    /// Webhook deliveries: attempts per notification, first backoff (doubling, at most
    /// 5 minutes) and the timeout of one attempt.
    pub webhook_max_attempts: u32,
    pub webhook_backoff_ms: u64,
    pub webhook_timeout_ms: u64,
    /// Alert events are kept this long.
    pub alert_event_retention_days: u64,
    /// Task log lines are kept this long (by the task's submission time).
    pub task_log_retention_days: u64,
    /// How often the search indexer runs, and most tasks it indexes per run.
    pub search_interval_ms: u64,
    pub search_batch: u32,
    /// POST the daily per-agent report (the last 24 hours) here, once a day.
    pub daily_report_webhook_url: Option<String>,
    /// The hour (UTC, 0-23) the daily report is sent.
    pub daily_report_hour_utc: u8,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            enabled: true,
            public_metrics: false,
            rollup_interval_ms: 10_000,
            minute_retention_h: 48,
            hour_retention_days: 90,
            alert_interval_ms: 15_000,
            webhook_max_attempts: 6,
            webhook_backoff_ms: 1_000,
            webhook_timeout_ms: 10_000,
            alert_event_retention_days: 90,
            task_log_retention_days: 30,
            search_interval_ms: 2_000,
            search_batch: 2_000,
            daily_report_webhook_url: None,
            daily_report_hour_utc: 6,
        }
    }
}
