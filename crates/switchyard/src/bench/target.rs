//! The system under test: an existing server or an embedded one, the remote SDK workers
//! of `--remote`, and the backlog of `--backlog`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::load::task_body;
use super::{BACKLOG_AGENT, BenchArgs, REMOTE_AGENT};
use crate::app::{self, Role};
use crate::config::Config;

pub(super) struct Target {
    pub(super) base: String,
    pub(super) key: String,
    pub(super) backend: String,
    pub(super) client: reqwest::Client,
    /// Keeps an embedded server alive for the run.
    pub(super) embedded: Option<(app::Running, tempfile::TempDir)>,
}

pub(super) async fn connect(
    config_file: Option<PathBuf>,
    args: &BenchArgs,
) -> anyhow::Result<Target> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + 4)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?;
    let (base, key, embedded) = match &args.url {
        Some(url) => {
            let key = args
                .api_key
                .clone()
                .context("--url needs --api-key (or SWITCHYARD_API_KEY)")?;
            (url.trim_end_matches('/').to_owned(), key, None)
        }
        None => {
            let dir = tempfile::tempdir()?;
            let mut config = Config::load(config_file.as_deref())?;
            // The configured database and cache (SQLite in the temporary directory by
            // default; SWITCHYARD__DATABASE__URL / SWITCHYARD__REDIS__URL to measure those).
            config.data_dir = dir.path().to_path_buf();
            config.server.listen = "127.0.0.1:0".parse()?;
            config.server.subscriber_buffer = config.server.subscriber_buffer.max(65_536);
            config.telemetry.log_level = "warn".into();
            crate::telemetry::init(&config.telemetry, crate::telemetry::LogTo::Stderr)?;
            let running = app::start(&config, Role::All).await?;
            let engine = &running.engine;
            engine.auth().ensure_admin("bench@localhost", None).await?;
            let user = engine.auth().user_by_email("bench@localhost").await?;
            let scopes = vec![
                switchyard_core::auth::Scope::Admin,
                switchyard_core::auth::Scope::Worker,
            ];
            let (_, secret) = engine
                .auth()
                .issue_api_key(user.id, user.role, "bench", scopes, None)
                .await?;
            let addr = running.addr.context("embedded server has no address")?;
            (format!("http://{addr}"), secret, Some((running, dir)))
        }
    };
    let ready: Value = client
        .get(format!("{base}/readyz"))
        .send()
        .await?
        .json()
        .await?;
    let backend = ready["database"]["backend"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    Ok(Target {
        base,
        key,
        backend,
        client,
        embedded,
    })
}

/// One unlabelled sample of the server's `/metrics`.
async fn server_metric(target: &Target, name: &str) -> Option<f64> {
    let text = target
        .client
        .get(format!("{}/metrics", target.base))
        .bearer_auth(&target.key)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

/// The server's resident memory, from its `/metrics`.
pub(super) async fn server_rss(target: &Target) -> Option<u64> {
    server_metric(target, "switchyard_process_resident_memory_bytes")
        .await
        .map(|v| v as u64)
}

/// The CPU time the server process has used, from its `/metrics`.
pub(super) async fn server_cpu_seconds(target: &Target) -> Option<f64> {
    server_metric(target, "switchyard_process_cpu_seconds_total").await
}

/// Registers an agent the load needs (one already there is kept).
pub(super) async fn register_agent(target: &Target, spec: serde_json::Value) -> anyhow::Result<()> {
    let r = target
        .client
        .post(format!("{}/api/v1/agents", target.base))
        .bearer_auth(&target.key)
        .json(&spec)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success() || r.status() == reqwest::StatusCode::CONFLICT,
        "could not register {}: HTTP {}",
        spec["name"],
        r.status()
    );
    Ok(())
}

/// Queues `n` tasks of [`BACKLOG_AGENT`], a remote agent no worker serves.
pub(super) async fn queue_backlog(target: &Target, n: usize) -> anyhow::Result<()> {
    register_agent(target, json!({"name": BACKLOG_AGENT, "kind": "remote"})).await?;
    let url = format!("{}/api/v1/tasks/batch", target.base);
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(1_000);
        let body = json!({ "tasks": (sent..sent + k).map(|i| task_body(BACKLOG_AGENT, i)).collect::<Vec<_>>() });
        let r = target
            .client
            .post(&url)
            .bearer_auth(&target.key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "backlog submit failed: HTTP {}",
            r.status()
        );
        sent += k;
    }
    Ok(())
}

/// The SDK workers of `--remote`.
pub(super) struct RemoteWorkers {
    stop: tokio_util::sync::CancellationToken,
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl RemoteWorkers {
    /// Returns once every worker has closed its connection: before the embedded server
    /// stops, so that no worker sees its server go away and logs a reconnect into the
    /// output (`--json` output is one JSON object per line, nothing else).
    pub(super) async fn stop(self) {
        self.stop.cancel();
        for worker in self.running {
            let _ = worker.await;
        }
    }
}

/// Starts `n` SDK workers in this process, serving [`REMOTE_AGENT`] (returns its input),
/// and waits until all have connected.
pub(super) async fn start_remote_workers(
    target: &Target,
    n: usize,
    slots: u32,
) -> anyhow::Result<RemoteWorkers> {
    let stop = tokio_util::sync::CancellationToken::new();
    let mut running = Vec::with_capacity(n);
    for i in 0..n {
        let worker = switchyard_sdk::Worker::connect(target.base.clone(), target.key.clone())
            .agent(REMOTE_AGENT, |input, _ctx| async move { Ok(input) })
            .slots(slots)
            .name(format!("bench-{i}"));
        let stop = stop.clone();
        running.push(tokio::spawn(async move {
            if let Err(e) = worker.run_until(stop.cancelled_owned()).await {
                eprintln!("bench worker {i} stopped: {e}");
            }
        }));
    }
    let started = RemoteWorkers { stop, running };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let workers: Value = target
            .client
            .get(format!("{}/api/v1/workers", target.base))
            .bearer_auth(&target.key)
            .send()
            .await?
            .json()
            .await?;
        let connected = workers["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| {
                w["agents"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == REMOTE_AGENT))
            })
            .count();
        if connected >= n {
            return Ok(started);
        }
        if Instant::now() > deadline {
            started.stop().await;
            bail!(
                "only {connected} of {n} remote workers connected (does the key have the worker scope?)"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
