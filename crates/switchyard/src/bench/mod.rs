//! `switchyard bench`: a load generator in the spirit of redis-benchmark and pgbench.
//!
//! Throughput mode submits N tasks to `echo` from C concurrent clients, B tasks per
//! request (B = 1: single requests, otherwise the batch endpoint), while following
//! completions over Server-Sent Events, and reports tasks/s end to end, the submit
//! rate and submit→completion latency percentiles. `--latency` submits one task at a
//! time with `?wait` on an idle system. Without `--url` it measures an embedded
//! instance on a temporary directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Mutex;

use crate::app::{self, Role};
use crate::config::Config;

mod http;

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// An existing server (e.g. http://127.0.0.1:8080). Without it: an embedded instance.
    #[arg(long)]
    pub url: Option<String>,
    /// API key for --url (needs the submit and read scopes).
    #[arg(long, env = "SWITCHYARD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Tasks to submit.
    #[arg(long, default_value_t = 20_000)]
    pub tasks: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Tasks per submit request (1 = single requests).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// One task at a time, submit → completion with `?wait`.
    #[arg(long)]
    pub latency: bool,
    /// The agent to load (it must echo or otherwise finish quickly).
    #[arg(long, default_value = "echo")]
    pub agent: String,
    /// Repeat the measurement this many times and report each run, the median and the
    /// min–max.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Run the load on N remote workers (the Rust SDK, in this process, over the worker
    /// WebSocket) serving an echo agent `bench-remote-echo`, instead of the built-in agent.
    #[arg(long, value_name = "N")]
    pub remote: Option<usize>,
    /// Slots per remote worker (the default, with --remote 2, matches the built-in
    /// worker's 4,096).
    #[arg(long, default_value_t = 2048)]
    pub remote_slots: u32,
    /// Print JSON (one object per run, then the summary) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Before measuring, run this many tasks to completion (unmeasured): throughput with
    /// a database full of finished tasks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub prefill: usize,
    /// Before measuring, queue this many tasks of an agent nothing serves
    /// (`bench-backlog`): submission and memory with a deep backlog.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub backlog: usize,
    /// Instead of the task load: open N client WebSockets subscribed to all tasks, report
    /// the server's memory before and after, and check that one task's result reaches
    /// every socket. Use with --url (a separate server), as each socket has two ends.
    #[arg(long, value_name = "N")]
    pub websockets: Option<usize>,
}

/// The agent the tasks of `--backlog` wait for: a remote agent with no worker.
pub const BACKLOG_AGENT: &str = "bench-backlog";

/// The agent the remote SDK workers of `--remote` serve.
pub const REMOTE_AGENT: &str = "bench-remote-echo";

struct Target {
    base: String,
    key: String,
    backend: String,
    client: reqwest::Client,
    /// Keeps an embedded server alive for the run.
    embedded: Option<(app::Running, tempfile::TempDir)>,
}

pub async fn run(config_file: Option<PathBuf>, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.tasks > 0, "--tasks must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let mut args = args;
    let target = connect(config_file, &args).await?;
    let workers = match args.remote {
        Some(n) => {
            anyhow::ensure!(n > 0, "--remote needs at least 1 worker");
            args.agent = REMOTE_AGENT.to_owned();
            Some(start_remote_workers(&target, n, args.remote_slots).await?)
        }
        None => None,
    };
    if let Some(n) = args.websockets {
        let report = websockets(&target, &args, n).await?;
        println!(
            "{}",
            if args.json {
                serde_json::to_string(&report)?
            } else {
                serde_json::to_string_pretty(&report)?
            }
        );
        if let Some(workers) = workers {
            workers.stop().await;
        }
        if let Some((running, _dir)) = target.embedded {
            running.stop().await?;
        }
        return Ok(());
    }
    let rss_start = server_rss(&target).await;
    if args.prefill > 0 {
        let fill = BenchArgs {
            tasks: args.prefill,
            batch: 1_000,
            concurrency: 4,
            ..args.clone()
        };
        throughput(&target, &fill).await?;
    }
    if args.backlog > 0 {
        queue_backlog(&target, args.backlog).await?;
    }
    let mut reports = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let mut report = if args.latency {
            latency(&target, &args).await?
        } else {
            throughput(&target, &args).await?
        };
        report["remote_workers"] = args.remote.unwrap_or(0).into();
        report["prefilled"] = args.prefill.into();
        report["backlog"] = args.backlog.into();
        report["server_rss_mb"] = json!({
            "at_start": rss_start.map(mb),
            "now": server_rss(&target).await.map(mb),
        });
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_table(&report);
        }
        reports.push(report);
    }
    if args.runs > 1 {
        let summary = summarize(&reports);
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            print_summary(&summary);
        }
    }
    if let Some(workers) = workers {
        workers.stop().await;
    }
    if let Some((running, _dir)) = target.embedded {
        running.stop().await?;
    }
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0
}

/// The server's resident memory, from its `/metrics`.
async fn server_rss(target: &Target) -> Option<u64> {
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
        .find_map(|l| l.strip_prefix("switchyard_process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Queues `n` tasks of [`BACKLOG_AGENT`], a remote agent no worker serves.
async fn queue_backlog(target: &Target, n: usize) -> anyhow::Result<()> {
    let r = target
        .client
        .post(format!("{}/api/v1/agents", target.base))
        .bearer_auth(&target.key)
        .json(&json!({"name": BACKLOG_AGENT, "kind": "remote"}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success() || r.status() == reqwest::StatusCode::CONFLICT,
        "could not register {BACKLOG_AGENT}: HTTP {}",
        r.status()
    );
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

/// Opens `n` client WebSockets subscribed to every task, measures the server's memory,
/// then submits one task and counts the sockets its result reached.
async fn websockets(target: &Target, args: &BenchArgs, n: usize) -> anyhow::Result<Value> {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let before = server_rss(target).await;
    let url = format!("{}/api/v1/ws", target.base.replacen("http", "ws", 1));
    let auth = json!({"type": "auth", "token": target.key}).to_string();
    let subscribe = json!({"type": "subscribe", "all": true}).to_string();
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    // Connect in waves, so the server's accept queue is never the limit.
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let opened = futures::future::try_join_all(chunk.iter().map(|_| {
            let (url, auth, subscribe) = (url.clone(), auth.clone(), subscribe.clone());
            async move {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES)
                    .write_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES);
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
                ws.send(Message::Text(auth.into())).await?;
                ws.send(Message::Text(subscribe.into())).await?;
                // authenticated, then subscribed
                let mut seen = 0;
                while seen < 2 {
                    match ws.next().await {
                        Some(Ok(Message::Text(t)))
                            if t.contains("\"authenticated\"") || t.contains("\"subscribed\"") =>
                        {
                            seen += 1
                        }
                        Some(Ok(Message::Text(t))) => anyhow::bail!("unexpected reply: {t}"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => anyhow::bail!("closed while subscribing"),
                    }
                }
                Ok::<_, anyhow::Error>(ws)
            }
        }))
        .await?;
        sockets.extend(opened);
    }
    let connect_s = started.elapsed().as_secs_f64();
    // Let the server settle (buffers shrink, allocator caches return).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server_rss(target).await;
    let r = target
        .client
        .post(format!("{}/api/v1/tasks", target.base))
        .bearer_auth(&target.key)
        .json(&task_body(&args.agent, 0))
        .send()
        .await?;
    let task: Value = r.json().await?;
    let id = task["id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let reached = futures::future::join_all(sockets.iter_mut().map(|ws| {
        let id = id.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
                if let Message::Text(t) = m
                    && t.contains(&id)
                    && t.contains("\"result\"")
                {
                    return true;
                }
            }
            false
        }
    }))
    .await
    .into_iter()
    .filter(|r| *r)
    .count();
    let fanout_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let mut m = base_report(target, args, "websockets");
    m.insert("websockets".into(), n.into());
    m.insert("connect_seconds".into(), connect_s.into());
    m.insert("server_rss_mb_before".into(), before.map(mb).into());
    m.insert("server_rss_mb_after".into(), after.map(mb).into());
    if let (Some(b), Some(a)) = (before, after) {
        m.insert(
            "added_kb_per_socket".into(),
            ((a.saturating_sub(b)) as f64 / 1024.0 / n as f64).into(),
        );
    }
    m.insert("result_reached_sockets".into(), reached.into());
    m.insert("fanout_ms".into(), fanout_ms.into());
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
    Ok(Value::Object(m))
}

/// The SDK workers of `--remote`.
struct RemoteWorkers {
    stop: tokio_util::sync::CancellationToken,
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl RemoteWorkers {
    /// Returns once every worker has closed its connection: before the embedded server
    /// stops, so that no worker sees its server go away and logs a reconnect into the
    /// output (`--json` output is one JSON object per line, nothing else).
    async fn stop(self) {
        self.stop.cancel();
        for worker in self.running {
            let _ = worker.await;
        }
    }
}

/// Starts `n` SDK workers in this process, serving [`REMOTE_AGENT`] (returns its input),
/// and waits until all have connected.
async fn start_remote_workers(
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

/// Median and min–max of each figure over the runs.
fn summarize(reports: &[Value]) -> Value {
    let stat = |f: &dyn Fn(&Value) -> f64| {
        let mut v: Vec<f64> = reports.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        json!({ "median": v[v.len() / 2], "min": v[0], "max": v[v.len() - 1] })
    };
    let mut m = reports[0].as_object().cloned().unwrap_or_default();
    for k in ["seconds", "throughput_per_s", "submit_per_s", "latency_ms"] {
        m.remove(k);
    }
    m.insert(
        "mode".into(),
        format!("{} summary", reports[0]["mode"].as_str().unwrap_or("?")).into(),
    );
    m.insert("runs".into(), reports.len().into());
    m.insert(
        "throughput_per_s".into(),
        stat(&|r| r["throughput_per_s"].as_f64().unwrap_or(0.0)),
    );
    m.insert(
        "submit_per_s".into(),
        stat(&|r| r["submit_per_s"].as_f64().unwrap_or(0.0)),
    );
    m.insert(
        "latency_p50_ms".into(),
        stat(&|r| r["latency_ms"]["p50"].as_f64().unwrap_or(0.0)),
    );
    m.insert(
        "latency_p99_ms".into(),
        stat(&|r| r["latency_ms"]["p99"].as_f64().unwrap_or(0.0)),
    );
    Value::Object(m)
}

fn print_summary(s: &Value) {
    println!("switchyard bench — median of {} runs (min–max)", s["runs"]);
    for (label, key, digits) in [
        ("throughput tasks/s", "throughput_per_s", 0),
        ("submit rate tasks/s", "submit_per_s", 0),
        ("latency p50 ms", "latency_p50_ms", 3),
        ("latency p99 ms", "latency_p99_ms", 3),
    ] {
        let f = |k: &str| s[key][k].as_f64().unwrap_or(0.0);
        println!(
            "  {label:<20} {:.digits$}   ({:.digits$} – {:.digits$})",
            f("median"),
            f("min"),
            f("max")
        );
    }
}

async fn connect(config_file: Option<PathBuf>, args: &BenchArgs) -> anyhow::Result<Target> {
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
            engine.auth.ensure_admin("bench@localhost", None).await?;
            let (user, _) = engine
                .store
                .user_by_email("bench@localhost")
                .await?
                .context("bench user")?;
            let scopes = vec![
                switchyard_core::auth::Scope::Admin,
                switchyard_core::auth::Scope::Worker,
            ];
            let (_, secret) = engine
                .auth
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

fn task_body(agent: &str, i: usize) -> Value {
    json!({ "agent": agent, "input": { "i": i } })
}

fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| (h.value_at_quantile(q) as f64) / 1_000.0;
    json!({ "p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "max": h.max() as f64 / 1_000.0 })
}

fn base_report(target: &Target, args: &BenchArgs, mode: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("mode".into(), mode.into());
    m.insert("backend".into(), target.backend.clone().into());
    m.insert(
        "cores".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .into(),
    );
    m.insert("tasks".into(), args.tasks.into());
    m.insert(
        "concurrency".into(),
        if args.latency {
            1.into()
        } else {
            args.concurrency.into()
        },
    );
    m.insert(
        "batch".into(),
        if args.latency {
            1.into()
        } else {
            args.batch.into()
        },
    );
    m.insert("agent".into(), args.agent.clone().into());
    m
}

async fn latency(target: &Target, args: &BenchArgs) -> anyhow::Result<Value> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut poster = Poster::connect(target).await?;
    let body = TaskBody::new(&args.agent)?;
    // Warm up connections and caches.
    for i in 0..args.tasks.min(50) {
        submit_wait(&mut poster, &body, i).await?;
    }
    let started = Instant::now();
    for i in 0..args.tasks {
        let t = Instant::now();
        submit_wait(&mut poster, &body, i).await?;
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut m = base_report(target, args, "latency");
    m.insert("seconds".into(), seconds.into());
    m.insert(
        "throughput_per_s".into(),
        (args.tasks as f64 / seconds).into(),
    );
    m.insert("submit_per_s".into(), (args.tasks as f64 / seconds).into());
    m.insert("latency_ms".into(), percentiles(&hist));
    Ok(Value::Object(m))
}

async fn submit_wait(poster: &mut Poster, body: &TaskBody, i: usize) -> anyhow::Result<()> {
    let (status, reply) = poster
        .post("/api/v1/tasks?wait=30s", &body.single(i))
        .await?;
    let done =
        serde_json::from_slice::<TaskStatusOnly>(reply).is_ok_and(|t| t.status == "succeeded");
    if status != 201 || !done {
        bail!(
            "task did not succeed in time: HTTP {status}, {}",
            String::from_utf8_lossy(reply)
        );
    }
    Ok(())
}

/// The one field `--latency` checks in a `?wait` answer.
#[derive(serde::Deserialize)]
struct TaskStatusOnly<'a> {
    status: &'a str,
}

/// Task bodies for the load, written straight into bytes (`{"agent":…,"input":{"i":N}}`).
struct TaskBody {
    /// `{"agent":"<agent>","input":{"i":`
    head: Vec<u8>,
}

impl TaskBody {
    fn new(agent: &str) -> anyhow::Result<Self> {
        let mut head = b"{\"agent\":".to_vec();
        serde_json::to_writer(&mut head, agent)?;
        head.extend_from_slice(b",\"input\":{\"i\":");
        Ok(TaskBody { head })
    }

    fn write(&self, out: &mut Vec<u8>, i: usize) {
        use std::io::Write;
        out.extend_from_slice(&self.head);
        let _ = write!(out, "{i}}}}}");
    }

    fn single(&self, i: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + 24);
        self.write(&mut out, i);
        out
    }

    /// `{"tasks":[…]}` for the batch endpoint.
    fn batch(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + range.len() * (self.head.len() + 24));
        out.extend_from_slice(b"{\"tasks\":[");
        for (n, i) in range.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            self.write(&mut out, i);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// How one simulated client sends its requests: over its own connection to a plain-HTTP
/// server ([`http::Connection`]), or through reqwest for `https://`.
enum Poster {
    Plain {
        conn: http::Connection,
        prefix: String,
    },
    Reqwest {
        client: reqwest::Client,
        base: String,
        auth: reqwest::header::HeaderValue,
        last: bytes::Bytes,
    },
}

impl Poster {
    async fn connect(target: &Target) -> anyhow::Result<Poster> {
        Ok(match http::plain_target(&target.base) {
            Some((authority, prefix)) => Poster::Plain {
                conn: http::Connection::connect(authority, &target.key).await?,
                prefix: prefix.to_owned(),
            },
            None => {
                let mut auth =
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {}", target.key))?;
                auth.set_sensitive(true);
                Poster::Reqwest {
                    client: target.client.clone(),
                    base: target.base.clone(),
                    auth,
                    last: bytes::Bytes::new(),
                }
            }
        })
    }

    /// POSTs a JSON body to `path` (under the target's base); the status and the body.
    async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        match self {
            Poster::Plain { conn, prefix } => {
                let r = if prefix.is_empty() {
                    conn.post_json(path, body).await?
                } else {
                    conn.post_json(&format!("{prefix}{path}"), body).await?
                };
                Ok((r.status, r.body))
            }
            Poster::Reqwest {
                client,
                base,
                auth,
                last,
            } => {
                let r = client
                    .post(format!("{base}{path}"))
                    .header(reqwest::header::AUTHORIZATION, auth.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec())
                    .send()
                    .await?;
                let status = r.status().as_u16();
                *last = r.bytes().await?;
                Ok((status, &last[..]))
            }
        }
    }
}

async fn throughput(target: &Target, args: &BenchArgs) -> anyhow::Result<Value> {
    let completions: Arc<Mutex<Vec<(String, Instant)>>> =
        Arc::new(Mutex::new(Vec::with_capacity(args.tasks)));
    let done = Arc::new(tokio::sync::Notify::new());
    let follower = follow(target, args, completions.clone(), done.clone()).await?;

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submitted: Arc<Mutex<HashMap<String, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(args.tasks)));
    let body = Arc::new(TaskBody::new(&args.agent)?);
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let next = next.clone();
        let submitted = submitted.clone();
        let body = body.clone();
        let mut poster = Poster::connect(target).await?;
        let (tasks, batch) = (args.tasks, args.batch);
        clients.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if start >= tasks {
                    return Ok::<_, anyhow::Error>(());
                }
                let end = (start + batch).min(tasks);
                let sent = Instant::now();
                let ids: Vec<String> = if batch == 1 {
                    let (status, reply) = poster.post("/api/v1/tasks", &body.single(start)).await?;
                    anyhow::ensure!(
                        status == 201,
                        "submit failed: HTTP {status}: {}",
                        String::from_utf8_lossy(reply)
                    );
                    vec![serde_json::from_slice::<TaskId>(reply)?.id.to_owned()]
                } else {
                    let (status, reply) = poster
                        .post("/api/v1/tasks/batch", &body.batch(start..end))
                        .await?;
                    anyhow::ensure!(
                        (200..300).contains(&status),
                        "batch submit failed: HTTP {status}: {}",
                        String::from_utf8_lossy(reply)
                    );
                    serde_json::from_slice::<Items>(reply)?
                        .items
                        .into_iter()
                        .map(|t| t.id.to_owned())
                        .collect()
                };
                let mut map = submitted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                for id in ids {
                    map.insert(id, sent);
                }
            }
        }));
    }
    for c in clients {
        c.await??;
    }
    let submit_seconds = started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(60 + (args.tasks / 500) as u64);
    // Submission is over: the submitted set is final. Each final event is matched once,
    // as it arrives, against it. Events of other tasks (a resumed stream replays what came
    // just before this run; other clients may share the agent on a live server) are
    // skipped, and no wake-up rescans what was already counted.
    let sub = std::mem::take(&mut *submitted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let mut tally = Tally::new(&sub);
    loop {
        tally.add(&std::mem::take(
            &mut *completions
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?,
        ));
        if tally.finished.len() >= args.tasks {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} tasks completed in time",
                tally.finished.len(),
                args.tasks
            );
        }
        tokio::select! {
            _ = done.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    follower.abort();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut last = started;
    for (id, sent) in sub.iter() {
        if let Some(finished) = tally.finished.get(id.as_str()) {
            hist.record(finished.saturating_duration_since(*sent).as_micros().max(1) as u64)?;
            last = last.max(*finished);
        }
    }
    let seconds = last.saturating_duration_since(started).as_secs_f64();
    let mut m = base_report(target, args, "throughput");
    m.insert("seconds".into(), seconds.into());
    m.insert(
        "throughput_per_s".into(),
        (args.tasks as f64 / seconds).into(),
    );
    m.insert(
        "submit_per_s".into(),
        (args.tasks as f64 / submit_seconds).into(),
    );
    m.insert("latency_ms".into(), percentiles(&hist));
    Ok(Value::Object(m))
}

/// Final events matched against the submitted tasks: the first arrival of each counts;
/// repeats and other tasks' events are skipped.
struct Tally<'a> {
    submitted: &'a HashMap<String, Instant>,
    /// Task → when its final event first arrived.
    finished: HashMap<&'a str, Instant>,
}

impl<'a> Tally<'a> {
    fn new(submitted: &'a HashMap<String, Instant>) -> Self {
        Tally {
            submitted,
            finished: HashMap::with_capacity(submitted.len()),
        }
    }

    fn add(&mut self, arrived: &[(String, Instant)]) {
        for (id, at) in arrived {
            if let Some((key, _)) = self.submitted.get_key_value(id.as_str()) {
                self.finished.entry(key.as_str()).or_insert(*at);
            }
        }
    }
}

/// The load generator reads only the ids of what it submitted; the rest is skipped.
#[derive(serde::Deserialize)]
struct TaskId<'a> {
    id: &'a str,
}

#[derive(serde::Deserialize)]
struct Items<'a> {
    #[serde(borrow)]
    items: Vec<TaskId<'a>>,
}

/// The fields the follower needs; the rest of the event is skipped.
#[derive(serde::Deserialize)]
struct FinalEvent<'a> {
    task_id: &'a str,
    kind: &'a str,
    at: &'a str,
}

/// How far back a resumed stream starts before the last final event seen: events of
/// the same millisecond, and those published out of time order by concurrent batches.
const RESUME_OVERLAP_MS: u64 = 2_000;

/// Opens the SSE stream of the agent's final events, from `since` (Unix ms) if given.
async fn open_events(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    since: Option<switchyard_core::Timestamp>,
) -> anyhow::Result<impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + use<>> {
    let url = match since {
        Some(at) => format!("{url}&since={}", at.millis().max(0)),
        None => url.to_owned(),
    };
    let response = client
        .get(url)
        .bearer_auth(key)
        .timeout(Duration::from_secs(24 * 3600))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "cannot follow events: HTTP {}",
        response.status()
    );
    Ok(response.bytes_stream())
}

/// Follows the agent's events over SSE and logs when each final event arrived (the
/// first arrival of a task's counts; a resumed stream repeats some).
/// A stream the server closes (this client fell behind under load and was dropped as a
/// slow consumer, or the server restarted) is resumed with `since`; duplicates are
/// ignored.
async fn follow(
    target: &Target,
    args: &BenchArgs,
    completions: Arc<Mutex<Vec<(String, Instant)>>>,
    done: Arc<tokio::sync::Notify>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let url = format!(
        "{}/api/v1/events?agent={}&kinds=result,error",
        target.base, args.agent
    );
    let (client, key) = (target.client.clone(), target.key.clone());
    let started = switchyard_core::Timestamp::now();
    let mut stream = Box::pin(open_events(&client, &url, &key, None).await?);
    Ok(tokio::spawn(async move {
        let mut last_at: Option<switchyard_core::Timestamp> = None;
        loop {
            let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                buf.extend_from_slice(&chunk);
                let mut consumed = 0;
                let mut found = Vec::new();
                let mut newest = None;
                while let Some(pos) = buf[consumed..].iter().position(|b| *b == b'\n') {
                    let line = &buf[consumed..consumed + pos];
                    consumed += pos + 1;
                    if let Some(data) = line.strip_prefix(b"data: ")
                        && let Ok(event) = serde_json::from_slice::<FinalEvent>(data)
                        && matches!(event.kind, "result" | "error")
                    {
                        found.push(event.task_id.to_owned());
                        newest = Some(event.at);
                    }
                }
                // Only the chunk's last final event is parsed for its time, before the
                // buffer it borrows from moves on.
                if let Some(at) = newest.and_then(switchyard_core::Timestamp::parse_rfc3339) {
                    last_at = Some(last_at.map_or(at, |l| l.max(at)));
                }
                buf.drain(..consumed);
                if !found.is_empty() {
                    if let Ok(mut log) = completions.lock() {
                        log.extend(found.into_iter().map(|id| (id, now)));
                    }
                    done.notify_one();
                }
            }
            let since = last_at.unwrap_or(started).minus_ms(RESUME_OVERLAP_MS);
            stream = loop {
                match open_events(&client, &url, &key, Some(since)).await {
                    Ok(s) => break Box::pin(s),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
        }
    }))
}

fn print_table(report: &Value) {
    let lat = &report["latency_ms"];
    println!(
        "switchyard bench — {} mode",
        report["mode"].as_str().unwrap_or("?")
    );
    println!(
        "  backend           {}",
        report["backend"].as_str().unwrap_or("?")
    );
    println!("  cores             {}", report["cores"]);
    println!("  tasks             {}", report["tasks"]);
    println!("  concurrency       {}", report["concurrency"]);
    println!("  batch             {}", report["batch"]);
    println!(
        "  seconds           {:.3}",
        report["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  throughput        {:.0} tasks/s (submit → completion, end to end)",
        report["throughput_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  submit rate       {:.0} tasks/s",
        report["submit_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  latency (ms)      p50 {:.3}   p95 {:.3}   p99 {:.3}   max {:.3}",
        lat["p50"].as_f64().unwrap_or(0.0),
        lat["p95"].as_f64().unwrap_or(0.0),
        lat["p99"].as_f64().unwrap_or(0.0),
        lat["max"].as_f64().unwrap_or(0.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_each_submitted_task_once_from_its_first_final_event() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let submitted: HashMap<String, Instant> =
            [("a".to_owned(), t0), ("b".to_owned(), t0)].into();
        let mut tally = Tally::new(&submitted);
        // "z" is another run's task, replayed by a resumed stream.
        tally.add(&[("z".into(), at(1)), ("a".into(), at(2))]);
        assert_eq!(tally.finished.len(), 1);
        // A resumed stream repeats "a" later: its first arrival stands.
        tally.add(&[
            ("a".into(), at(9)),
            ("z".into(), at(9)),
            ("b".into(), at(5)),
        ]);
        assert_eq!(tally.finished.len(), 2);
        assert_eq!(tally.finished["a"], at(2));
        assert_eq!(tally.finished["b"], at(5));
    }
}
