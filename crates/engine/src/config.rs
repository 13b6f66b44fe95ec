//! Engine settings. The binary reads them from its configuration (file and
//! `SWITCHYARD__QUEUE__*` / `SWITCHYARD__AUTH__*` variables).

use serde::{Deserialize, Serialize};
pub use switchyard_auth::AuthConfig;
pub use switchyard_monitoring::MonitoringConfig;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub queue: QueueConfig,
    pub auth: AuthConfig,
    pub monitoring: MonitoringConfig,
    pub files: FilesConfig,
    pub backup: BackupConfig,
    pub agents: AgentsConfig,
    pub audit: switchyard_core::audit::AuditConfig,
}

/// Agent kinds this server offers (docs/agents.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// The `command` kind: admins may register agents that run programs on this machine
    /// as the server's user, and the built-in worker runs them. Unset: on under
    /// `switchyard dev`, off under `serve` (the binary decides; unset here is off).
    pub allow_command: Option<bool>,
}

impl AgentsConfig {
    pub fn command_allowed(&self) -> bool {
        self.allow_command == Some(true)
    }
}

/// Backups the servers take by themselves (docs/backup.md, "Scheduled backups").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// When to take one: a cron expression (5 fields, or 6 with seconds first), in UTC.
    /// Only the leader takes it. Unset: backups are taken on request only.
    pub schedule: Option<String>,
    /// Where they go: a directory, or `s3://bucket/prefix` (with the `files.s3_*`
    /// settings). Needed for scheduled backups and `POST /api/v1/backups`.
    pub target: Option<String>,
    /// Successful backups kept at the target; older ones are deleted.
    pub keep: u32,
    /// Include the token signing keys and sessions.
    pub include_secrets: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            schedule: None,
            target: None,
            keep: 7,
            include_secrets: false,
        }
    }
}

/// File storage: where the bytes go, and the limits on uploads.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// `s3://bucket/prefix`, `file:///path` or a directory. Unset: `<data_dir>/files`.
    pub url: Option<String>,
    /// S3-compatible servers: `http(s)://host:port`. Unset: AWS (or `AWS_ENDPOINT`).
    pub s3_endpoint: Option<String>,
    /// Unset: `AWS_REGION`, else `us-east-1`.
    pub s3_region: Option<String>,
    /// Unset: `AWS_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// Unset: `AWS_SECRET_ACCESS_KEY`. Never logged or shown.
    #[serde(skip_serializing)]
    pub s3_secret_access_key: Option<String>,
    /// Largest upload, in bytes.
    pub max_bytes: u64,
    /// Most bytes of files one user may keep.
    pub quota_bytes: u64,
    /// How long a signed download URL given to a worker stays valid.
    pub url_ttl_s: u64,
    /// An upload must be complete within this long; one that is not is aborted, and an
    /// upload left unfinished by a server that died is removed after it.
    pub upload_timeout_s: u64,
}

impl std::fmt::Debug for FilesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesConfig")
            .field("url", &self.url)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field(
                "s3_secret_access_key",
                &self.s3_secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("max_bytes", &self.max_bytes)
            .field("quota_bytes", &self.quota_bytes)
            .field("url_ttl_s", &self.url_ttl_s)
            .field("upload_timeout_s", &self.upload_timeout_s)
            .finish()
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            url: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            max_bytes: 5 << 30,
            quota_bytes: 50 << 30,
            url_ttl_s: 900,
            upload_timeout_s: 3_600,
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
    /// Stream events (progress, partial output) each task keeps, newest first, so that a
    /// follower that connects late, to another server or after a restart receives the
    /// whole stream; older ones are dropped (a few hundred at a time) and followers are
    /// told how many. 0 keeps none.
    pub max_stream_events: u32,
    /// Largest result of one durable step (its JSON text), in bytes.
    pub max_step_output_bytes: usize,
    /// Most durable steps one task may record.
    pub max_steps_per_task: u32,
    /// Most child tasks one task may spawn.
    pub max_children_per_task: u64,
    /// Largest signal payload (its JSON text), in bytes.
    pub max_signal_bytes: usize,
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
            max_stream_events: 10_000,
            max_step_output_bytes: 1 << 20,
            max_steps_per_task: 1_000,
            max_children_per_task: 10_000,
            max_signal_bytes: 64 << 10,
        }
    }
}
