//! Configuration: built-in defaults < TOML file < `SWITCHYARD__SECTION__KEY` environment
//! variables < command-line flags. The only place that reads the environment.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use switchyard_api::ServerConfig;
use switchyard_engine::{AuthConfig, QueueConfig};
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
    pub queue: QueueConfig,
    pub auth: AuthConfig,
    pub worker: WorkerConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` (default: `<data_dir>/switchyard.db`).
    pub url: Option<String>,
    /// SQLite: `full` fsyncs every commit (survives power loss); `normal` survives
    /// process crashes only.
    pub sqlite_durability: Durability,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            sqlite_durability: Durability::Full,
        }
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
            slots: 256,
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
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Json,
            log_level: "info".into(),
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
        figment.extract().context("invalid configuration")
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
            queue: QueueConfig::default(),
            auth: AuthConfig::default(),
            worker: WorkerConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
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
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisten_on = \"x\"\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&file)).unwrap_err());
        assert!(err.contains("listen_on"), "{err}");
    }
}
