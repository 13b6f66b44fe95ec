//! Configuration: built-in defaults < TOML file < `SWITCHYARD__SECTION__KEY` environment
//! variables < command-line flags. The only place that reads the environment.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use switchyard_api::ServerConfig;
use switchyard_core::audit::AuditConfig;
use switchyard_engine::{
    AgentsConfig, AuthConfig, BackupConfig, FilesConfig, MonitoringConfig, QueueConfig,
};
use switchyard_store::Durability;

pub const DEFAULT_CONFIG_FILE: &str = "switchyard.toml";
pub const ENV_PREFIX: &str = "SWITCHYARD__";
/// Password for the admin user created on first start (read once, never logged).
pub const ADMIN_PASSWORD_ENV: &str = "SWITCHYARD_ADMIN_PASSWORD";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and files live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub queue: QueueConfig,
    pub auth: AuthConfig,
    pub worker: WorkerConfig,
    pub telemetry: TelemetryConfig,
    pub monitoring: MonitoringConfig,
    pub files: FilesConfig,
    pub backup: BackupConfig,
    pub agents: AgentsConfig,
    pub audit: AuditConfig,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` (default:
    /// `sqlite://<data_dir>/switchyard.db`).
    pub url: Option<String>,
    /// PostgreSQL: a streaming replica for read-heavy queries (lists, logs, statistics,
    /// workers). Anything that must read its own write uses the primary.
    pub replica_url: Option<String>,
    /// PostgreSQL: most connections per pool (primary and replica each) per process.
    pub max_connections: u32,
    /// SQLite: `full` fsyncs every commit (survives power loss); `normal` survives
    /// process crashes only.
    pub sqlite_durability: Durability,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            replica_url: None,
            max_connections: 16,
            sqlite_durability: Durability::Full,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("replica_url", &self.replica_url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("sqlite_durability", &self.sqlite_durability)
            .finish()
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`. Unset: sessions in the database, caches and
    /// rate limits per process, events over the database (PostgreSQL) or in-process.
    pub url: Option<String>,
    /// Prepended to every key and channel, so several installs can share one Redis.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            prefix: "switchyard:".into(),
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A connection URL fit for logs: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Tasks of built-in kinds this process runs at once.
    pub slots: u32,
    /// Shown in the workers list.
    pub name: String,
    /// How long shutdown waits for running tasks, in seconds.
    pub drain_timeout_s: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            slots: 4096,
            name: "builtin".into(),
            drain_timeout_s: 30,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `json` (one object per line) or `pretty`.
    pub log_format: LogFormat,
    /// A tracing filter: `info`, `switchyard=debug,info`, …
    pub log_level: String,
    /// Export spans over OTLP/HTTP (protobuf) to this collector, e.g.
    /// `http://127.0.0.1:4318` (spans go to `<endpoint>/v1/traces`). Off when unset.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otlp_endpoint: None,
            service_name: "switchyard".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Config {
    /// Loads defaults, then the file (explicit path, or `switchyard.toml` if present),
    /// then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        Self::load_with(file, Config::default())
    }

    /// Like [`Config::load`] with other built-in defaults (e.g. `dev` logs prettily).
    pub fn load_with(file: Option<&Path>, defaults: Config) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(defaults));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file(path));
            }
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let mut config: Config = figment.extract().context("invalid configuration")?;
        config.read_secrets_from_env();
        Ok(config)
    }

    /// Secrets the configuration names by environment variable (never written in it).
    fn read_secrets_from_env(&mut self) {
        if let Some(oidc) = &mut self.auth.oidc {
            oidc.client_secret = std::env::var(&oidc.client_secret_env)
                .ok()
                .filter(|s| !s.is_empty());
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("switchyard.db").display()),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./switchyard-data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            queue: QueueConfig::default(),
            auth: AuthConfig::default(),
            worker: WorkerConfig::default(),
            telemetry: TelemetryConfig::default(),
            monitoring: MonitoringConfig::default(),
            files: FilesConfig::default(),
            backup: BackupConfig::default(),
            agents: AgentsConfig::default(),
            audit: AuditConfig::default(),
        }
    }
}

/// What each key means, for `switchyard config init`. A key missing here is still
/// written, just without a comment.
const KEY_DOCS: &[(&str, &str)] = &[
    (
        "data_dir",
        "Where the embedded database (SQLite) and files live.",
    ),
    ("server", "The HTTP API (roles `api` and `all`)."),
    (
        "files",
        "File storage: uploads, task input files and artifacts.",
    ),
    (
        "files.url",
        "s3://bucket/prefix for S3-compatible storage, file:///path or a directory. Unset: <data_dir>/files.",
    ),
    (
        "files.s3_endpoint",
        "S3-compatible servers (MinIO, Ceph, moto): http(s)://host:port. Unset: AWS, or AWS_ENDPOINT.",
    ),
    ("files.s3_region", "Unset: AWS_REGION, else us-east-1."),
    ("files.s3_access_key_id", "Unset: AWS_ACCESS_KEY_ID."),
    (
        "files.s3_secret_access_key",
        "Unset: AWS_SECRET_ACCESS_KEY. Write-only: never logged or shown.",
    ),
    ("files.max_bytes", "Largest upload, in bytes (413 beyond)."),
    (
        "files.quota_bytes",
        "Most bytes of files one user may keep.",
    ),
    (
        "files.url_ttl_s",
        "How long a signed download URL given to a worker stays valid, in seconds.",
    ),
    (
        "files.upload_timeout_s",
        "An upload must be complete within this long, in seconds; an unfinished one is removed after it.",
    ),
    (
        "backup",
        "Backups the servers take themselves (docs/backup.md). `switchyard backup` needs none of this.",
    ),
    (
        "backup.schedule",
        "When the leader takes one: cron (5 fields, or 6 with seconds first), UTC. Unset: on request only.",
    ),
    (
        "backup.target",
        "Where they go: a directory, or s3://bucket/prefix (with the files.s3_* settings).",
    ),
    (
        "backup.keep",
        "Successful backups kept at the target; older ones are deleted.",
    ),
    (
        "backup.include_secrets",
        "Include the token signing keys and sessions (else everyone signs in again after a restore).",
    ),
    (
        "audit",
        "The audit log of security-relevant actions (docs/audit.md).",
    ),
    (
        "audit.retention_days",
        "Days an audit entry is kept; older ones are deleted. 0 keeps every entry forever.",
    ),
    ("agents", "Agent kinds this server offers (docs/agents.md)."),
    (
        "agents.allow_command",
        "Allow `command` agents: programs that run on this machine as the server's user, registered by admins only.\nUnset: on under `switchyard dev`, off under `switchyard serve`.",
    ),
    ("server.listen", "Address to listen on."),
    (
        "server.body_limit_bytes",
        "Largest request body accepted, in bytes.",
    ),
    (
        "server.header_read_timeout_ms",
        "A request head must be complete this long after its first byte (a new connection: after connecting), in ms; slower clients are disconnected.",
    ),
    (
        "server.idle_timeout_ms",
        "A keep-alive connection idle this long between requests is closed, in ms. Keep it above the idle timeout of a proxy in front (NGINX: 60 s).",
    ),
    (
        "server.body_read_timeout_ms",
        "A request body must have arrived this long after the request head, in ms, or the request is answered 408. Handlers themselves (a ?wait= long poll) are not limited.",
    ),
    (
        "server.max_connections",
        "Most HTTP connections open at once (WebSockets and SSE streams included); more wait in the listen backlog. Unset: three quarters of the open-file limit (raised to its maximum at start-up), at most 65,536.",
    ),
    (
        "server.cors_origins",
        "Browser origins allowed to call the API. Empty: CORS off.",
    ),
    (
        "server.trusted_proxies",
        "Reverse proxies (addresses or networks, e.g. \"10.0.0.0/8\") whose X-Forwarded-For names the client, for login throttling. Empty: the client is the TCP peer and the header is ignored.",
    ),
    (
        "server.subscriber_buffer",
        "Events buffered per live subscriber (SSE, WebSocket) before it counts as too slow; keep it well above twice queue.max_write_batch, the events one commit publishes at once.",
    ),
    (
        "database",
        "SQLite (embedded default) or PostgreSQL (production).",
    ),
    (
        "database.url",
        "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB. Default: sqlite://<data_dir>/switchyard.db",
    ),
    (
        "database.replica_url",
        "PostgreSQL streaming replica for read-heavy queries (lists, logs, statistics, workers).",
    ),
    (
        "database.max_connections",
        "PostgreSQL: most connections per pool (primary and replica each), per process.",
    ),
    (
        "database.sqlite_durability",
        "SQLite: `full` fsyncs every commit (survives power loss); `normal` survives process crashes only.",
    ),
    (
        "redis",
        "Shared cache and event fan-out for a cluster. Without it: sessions in the database, per-process caches.",
    ),
    ("redis.url", "redis://[:PASSWORD@]HOST:PORT[/DB]"),
    (
        "redis.prefix",
        "Prepended to every key and channel, so several installs can share one Redis.",
    ),
    ("queue", "Queueing, leases and dispatch."),
    (
        "queue.lease_ms",
        "How long a claimed task stays leased without a heartbeat.",
    ),
    (
        "queue.heartbeat_ms",
        "How often workers extend their leases.",
    ),
    (
        "queue.reaper_interval_ms",
        "How often the reaper looks for expired leases and overdue cancellations.",
    ),
    (
        "queue.cancel_grace_ms",
        "How long a running task may ignore a cancel request before it is forced.",
    ),
    (
        "queue.idempotency_window_s",
        "Same owner + idempotency key within this window returns the existing task.",
    ),
    (
        "queue.max_write_batch",
        "Most tasks written in one database transaction (group commit).",
    ),
    (
        "queue.max_submit_batch",
        "Most tasks in one POST /api/v1/tasks/batch request.",
    ),
    (
        "queue.poll_interval_ms",
        "Safety net for missed wake-ups: dispatchers look for work this often when idle.",
    ),
    ("queue.max_wait_ms", "Longest ?wait= a client may ask for."),
    (
        "queue.max_delay_ms",
        "Furthest ahead a task may be scheduled with run_at or delay_ms (default one year).",
    ),
    (
        "queue.replay_events",
        "Recent task events kept in memory per server for clients that resume.",
    ),
    (
        "queue.max_stream_events",
        "Stream events (progress, partial output such as LLM tokens) each task keeps in the database, so a follower that connects late, to another server or after a restart receives the whole stream; older ones are dropped a few hundred at a time and followers told. 0: none kept.",
    ),
    (
        "queue.max_step_output_bytes",
        "Largest result of one durable step (its JSON text), in bytes (default 1 MiB).",
    ),
    (
        "queue.max_steps_per_task",
        "Most durable steps one task may record.",
    ),
    ("auth", "Sessions, tokens and login limits."),
    (
        "auth.access_ttl_s",
        "Lifetime of access tokens (JWT), in seconds.",
    ),
    (
        "auth.refresh_ttl_s",
        "Lifetime of a session's refresh token (renewed on each refresh), in seconds.",
    ),
    (
        "auth.jwt_secret",
        "HMAC secret for access tokens (at least 32 characters). Unset: generated once and kept in the database.",
    ),
    (
        "auth.refresh_reuse_grace_s",
        "For this long after a refresh, its spent refresh token presented again (a concurrent or retried request) gets the same new token instead of revoking the session. Keep it above clients' request timeouts; 0: off.",
    ),
    (
        "auth.login_max_failures",
        "Failed logins allowed per account and client address within login_window_s; then doubling lockouts (1 s, 2 s … 1 h) of that pair.",
    ),
    (
        "auth.login_address_max_failures",
        "Failed logins allowed per client address over all accounts within login_window_s; then doubling lockouts of the address.",
    ),
    (
        "auth.login_account_max_failures",
        "Failed logins allowed per account over all addresses within login_window_s; then doubling lockouts of the account, except on addresses known for it.",
    ),
    (
        "auth.password_login",
        "Email and password logins. false: single sign-on only ([auth.oidc] required), except auth.break_glass_email.",
    ),
    (
        "auth.break_glass_email",
        "With password_login = false, this one account may still log in with its password (when the identity provider is down).",
    ),
    (
        "auth.oidc",
        "Single sign-on with an OpenID Connect provider (docs/sso.md): issuer, client_id, redirect_url (the public URL of /api/v1/auth/oidc/callback),\nname (\"Sign in with <name>\"), scopes, role_claim, role_map (claim value = \"admin\" | \"operator\" | \"viewer\"), default_role,\ntoken_endpoint_auth, client_secret_env (the variable holding the client secret; default SWITCHYARD_OIDC_CLIENT_SECRET).",
    ),
    (
        "auth.login_window_s",
        "Window of the failed-login limits, in seconds.",
    ),
    (
        "auth.login_known_address_days",
        "An address that logged in to an account stays known for it this many days: the address and account lockouts never apply to it.",
    ),
    (
        "worker",
        "The built-in worker runtime (roles `worker` and `all`).",
    ),
    (
        "worker.slots",
        "Tasks of built-in kinds this process runs at once.",
    ),
    ("worker.name", "Shown in the workers list."),
    (
        "worker.drain_timeout_s",
        "How long shutdown waits for running tasks, in seconds.",
    ),
    ("telemetry", "Logs and trace export."),
    (
        "telemetry.log_format",
        "`json` (one object per line) or `pretty`.",
    ),
    (
        "telemetry.log_level",
        "A tracing filter: `info`, `switchyard=debug,info`, …",
    ),
    (
        "telemetry.otlp_endpoint",
        "Export spans over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318); off when unset.",
    ),
    (
        "telemetry.service_name",
        "The `service.name` of exported spans.",
    ),
    (
        "monitoring",
        "Metrics (/metrics), time series, alerts, reports, search indexing and retention.",
    ),
    (
        "monitoring.enabled",
        "Record metrics, roll them up and evaluate alerts. Off: only process figures on /metrics.",
    ),
    (
        "monitoring.public_metrics",
        "Serve /metrics without a credential. Otherwise it needs a token or API key with the `read` scope.",
    ),
    (
        "monitoring.rollup_interval_ms",
        "How often each process adds its metric deltas to the one-minute rollups (and queue gauges are sampled).",
    ),
    (
        "monitoring.minute_retention_h",
        "One-minute buckets are kept this many hours, then folded into one-hour buckets.",
    ),
    (
        "monitoring.hour_retention_days",
        "One-hour buckets are kept this many days.",
    ),
    (
        "monitoring.alert_interval_ms",
        "How often alert rules are evaluated.",
    ),
    (
        "monitoring.webhook_max_attempts",
        "Delivery attempts per alert notification.",
    ),
    (
        "monitoring.webhook_backoff_ms",
        "Backoff after the first failed delivery; it doubles, up to 5 minutes.",
    ),
    (
        "monitoring.webhook_timeout_ms",
        "Timeout of one webhook delivery.",
    ),
    (
        "monitoring.alert_event_retention_days",
        "Alert events are kept this many days.",
    ),
    (
        "monitoring.task_log_retention_days",
        "Task log lines are kept this many days (counted from the task's submission).",
    ),
    (
        "monitoring.search_interval_ms",
        "How often the full-text search indexer runs.",
    ),
    (
        "monitoring.search_batch",
        "Most tasks the search indexer takes per run.",
    ),
    (
        "monitoring.daily_report_webhook_url",
        "POST the per-agent report of the last 24 hours here once a day (Slack-compatible JSON).",
    ),
    (
        "monitoring.daily_report_hour_utc",
        "The hour (UTC, 0-23) the daily report is sent.",
    ),
];

/// Keys without a default value, written commented out with an example.
const UNSET_EXAMPLES: &[(&str, &str)] = &[
    ("server.max_connections", "10000"),
    (
        "database.url",
        "\"postgres://switchyard:CHANGE-ME@127.0.0.1:5432/switchyard\"",
    ),
    (
        "database.replica_url",
        "\"postgres://switchyard:CHANGE-ME@127.0.0.1:5433/switchyard\"",
    ),
    ("redis.url", "\"redis://127.0.0.1:6379\""),
    ("agents.allow_command", "true"),
    ("backup.schedule", "\"0 3 * * *\""),
    ("backup.target", "\"/var/backups/switchyard\""),
    ("files.url", "\"s3://switchyard-files/prod\""),
    ("files.s3_endpoint", "\"http://127.0.0.1:9000\""),
    ("files.s3_region", "\"us-east-1\""),
    ("files.s3_access_key_id", "\"AKIA…\""),
    ("files.s3_secret_access_key", "\"CHANGE-ME\""),
    (
        "auth.jwt_secret",
        "\"at-least-32-random-characters-please\"",
    ),
    ("auth.break_glass_email", "\"admin@example.com\""),
    (
        "auth.oidc",
        "{ issuer = \"https://login.example.com/realms/main\", client_id = \"switchyard\", name = \"Example SSO\", redirect_url = \"https://switchyard.example.com/api/v1/auth/oidc/callback\", role_claim = \"groups\", role_map = { \"switchyard-admins\" = \"admin\", \"switchyard-operators\" = \"operator\" }, default_role = \"viewer\" }",
    ),
    (
        "monitoring.daily_report_webhook_url",
        "\"https://hooks.slack.com/services/…\"",
    ),
    ("telemetry.otlp_endpoint", "\"http://127.0.0.1:4318\""),
];

fn push_doc(out: &mut String, key: &str) {
    if let Some((_, doc)) = KEY_DOCS.iter().find(|(k, _)| *k == key) {
        for line in doc.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// `switchyard config init`: every key with its default value and what it means, as a
/// TOML file that loads back into the defaults.
pub fn commented_toml() -> anyhow::Result<String> {
    let defaults = toml::Table::try_from(Config::default()).context("encode the defaults")?;
    let mut out = String::from(
        "# Switchyard configuration. Precedence: defaults < this file < SWITCHYARD__SECTION__KEY\n\
         # environment variables < command-line flags. Every key is shown with its default.\n",
    );
    let (scalars, sections): (Vec<_>, Vec<_>) = defaults.iter().partition(|(_, v)| !v.is_table());
    for (key, value) in scalars {
        out.push('\n');
        push_doc(&mut out, key);
        out.push_str(&format!("{key} = {value}\n"));
    }
    for (section, table) in sections {
        let Some(table) = table.as_table() else {
            continue;
        };
        out.push('\n');
        push_doc(&mut out, section);
        out.push_str(&format!("[{section}]\n"));
        for (key, value) in table {
            push_doc(&mut out, &format!("{section}.{key}"));
            out.push_str(&format!("{key} = {value}\n"));
        }
        for (path, example) in UNSET_EXAMPLES {
            if let Some(key) = path.strip_prefix(&format!("{section}.")) {
                if table.contains_key(key) {
                    continue;
                }
                push_doc(&mut out, path);
                out.push_str(&format!("# {key} = {example}\n"));
            }
        }
    }
    Ok(out)
}

/// This process's environment, which the built-in worker may hand on to programs (a
/// `command` agent's `pass_env` names the variables it gets).
pub fn host_environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().collect()
}

/// The admin password to bootstrap with, if the operator chose one.
pub fn admin_password() -> Option<String> {
    std::env::var(ADMIN_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "data_dir = \"/tmp/from-file\"\n[server]\nlisten = \"127.0.0.1:9000\"\n[queue]\nlease_ms = 1234\n").unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.queue.lease_ms, 1234);
        assert_eq!(c.queue.heartbeat_ms, QueueConfig::default().heartbeat_ms);
    }

    #[test]
    fn urls_are_redacted_in_debug_output() {
        let mut c = Config::default();
        c.database.url = Some("postgres://app:s3cret@db:5432/sy".into());
        c.database.replica_url = Some("postgres://app:s3cret@replica/sy".into());
        c.redis.url = Some("redis://:s3cret@cache:6379".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/sy"), "{shown}");
    }

    #[test]
    fn generated_config_loads_back_into_the_defaults() {
        let text = commented_toml().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchyard.toml");
        std::fs::write(&file, &text).unwrap();
        let loaded = Figment::from(Toml::file(&file))
            .extract::<Config>()
            .unwrap();
        assert_eq!(loaded, Config::default(), "{text}");
        for (key, _) in KEY_DOCS {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(text.contains(leaf), "{key} is in the file");
        }
        assert!(text.contains("# url = \"postgres://"), "{text}");
    }

    #[test]
    fn trusted_proxies_are_checked_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        let shown: Vec<String> = c
            .server
            .trusted_proxies
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7"]);
        std::fs::write(&file, "[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&file)).unwrap_err());
        assert!(err.contains("10.0.0.0/40"), "{err}");
    }

    #[test]
    fn the_sso_example_loads_and_its_secret_stays_out_of_sight() {
        let text = commented_toml().unwrap().replace("# oidc = {", "oidc = {");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchyard.toml");
        std::fs::write(&file, &text).unwrap();
        let mut loaded = Figment::from(Toml::file(&file))
            .extract::<Config>()
            .unwrap();
        let oidc = loaded
            .auth
            .oidc
            .as_mut()
            .expect("[auth.oidc] from the example");
        assert_eq!(oidc.client_secret_env, "SWITCHYARD_OIDC_CLIENT_SECRET");
        assert_eq!(
            oidc.role_map.get("switchyard-admins"),
            Some(&switchyard_core::auth::Role::Admin)
        );
        oidc.client_secret = Some("very-secret-value".into());
        oidc.validate().unwrap();
        let shown = format!("{loaded:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        let written = toml::to_string(&loaded).unwrap();
        assert!(!written.contains("very-secret-value"), "{written}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisten_on = \"x\"\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&file)).unwrap_err());
        assert!(err.contains("listen_on"), "{err}");
    }
}
