//! Engine settings. The binary reads them from its configuration (file and
//! `SWITCHYARD__QUEUE__*` / `SWITCHYARD__AUTH__*` variables).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub queue: QueueConfig,
    pub auth: AuthConfig,
    pub monitoring: MonitoringConfig,
}

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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// How long a claimed task stays leased without a heartbeat.
    pub lease_ms: u64,
    /// How often workers extend their leases.
    pub heartbeat_ms: u64,
    /// How often the reaper looks for expired leases and overdue cancellations.
    pub reaper_interval_ms: u64,
    /// How long a running task may ignore a cancel request before it is forced.
    pub cancel_grace_ms: u64,
    /// Same owner + idempotency key within this window returns the existing task.
    pub idempotency_window_s: u64,
    /// Most tasks written in one database transaction (group commit).
    pub max_write_batch: usize,
    /// Most tasks in one `POST /tasks/batch` request.
    pub max_submit_batch: usize,
    /// Safety net for missed wake-ups: dispatchers look for work this often when idle.
    pub poll_interval_ms: u64,
    /// Longest `?wait=` a client may ask for.
    pub max_wait_ms: u64,
    /// Furthest ahead a task may be scheduled (`run_at`, `delay_ms`).
    pub max_delay_ms: u64,
    /// Recent task events kept in memory per server for clients that resume with `since`.
    pub replay_events: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_ms: 30_000,
            heartbeat_ms: 5_000,
            reaper_interval_ms: 1_000,
            cancel_grace_ms: 10_000,
            idempotency_window_s: 86_400,
            max_write_batch: 2_000,
            max_submit_batch: 1_000,
            poll_interval_ms: 2_000,
            max_wait_ms: 60_000,
            max_delay_ms: 365 * 86_400_000,
            replay_events: 65_536,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of access tokens (JWT).
    pub access_ttl_s: u64,
    /// Lifetime of a session's refresh token, renewed on each refresh.
    pub refresh_ttl_s: u64,
    /// HMAC secret for access tokens. Unset: generated once and kept in the database.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<String>,
    /// Earlier secrets, still accepted for verification (rotation of a configured secret).
    #[serde(skip_serializing)]
    pub jwt_previous_secrets: Vec<String>,
    /// For this long after a refresh, presenting the refresh token it spent again (a
    /// concurrent or retried request) gets the same new token instead of revoking the
    /// session. Keep it above clients' request timeouts; 0 turns the grace off.
    pub refresh_reuse_grace_s: u64,
    /// Failed logins allowed per account and client address within `login_window_s`
    /// before doubling lockouts of that pair start.
    pub login_max_failures: u32,
    /// Failed logins allowed per client address, over all accounts (credential stuffing).
    pub login_address_max_failures: u32,
    /// Failed logins allowed per account, over all addresses (distributed guessing). The
    /// lock this leads to spares addresses known for the account.
    pub login_account_max_failures: u32,
    /// How long failed logins are remembered.
    pub login_window_s: u64,
    /// An address that logged in to an account is known for it this long (renewed on each
    /// login): the address and account limits never lock it out.
    pub login_known_address_days: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 86_400,
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            refresh_reuse_grace_s: 30,
            login_max_failures: 5,
            login_address_max_failures: 20,
            login_account_max_failures: 50,
            login_window_s: 3_600,
            login_known_address_days: 30,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("access_ttl_s", &self.access_ttl_s)
            .field("refresh_ttl_s", &self.refresh_ttl_s)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("refresh_reuse_grace_s", &self.refresh_reuse_grace_s)
            .field("login_max_failures", &self.login_max_failures)
            .field(
                "login_address_max_failures",
                &self.login_address_max_failures,
            )
            .field(
                "login_account_max_failures",
                &self.login_account_max_failures,
            )
            .field("login_window_s", &self.login_window_s)
            .field("login_known_address_days", &self.login_known_address_days)
            .finish()
    }
}
