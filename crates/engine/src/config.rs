//! Engine settings. The binary reads them from its configuration (file and
//! `SWITCHYARD__QUEUE__*` / `SWITCHYARD__AUTH__*` variables).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub queue: QueueConfig,
    pub auth: AuthConfig,
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
    /// Failed logins allowed per account before exponential lockout starts (per client
    /// address: four times as many).
    pub login_max_failures: u32,
    /// How long failed logins are remembered.
    pub login_window_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 86_400,
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            login_max_failures: 5,
            login_window_s: 3_600,
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
            .field("login_max_failures", &self.login_max_failures)
            .field("login_window_s", &self.login_window_s)
            .finish()
    }
}
