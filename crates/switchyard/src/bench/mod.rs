//! `switchyard bench`: a load generator in the spirit of redis-benchmark and pgbench.
//!
//! Throughput mode submits N tasks to `echo` from C concurrent clients, B tasks per
//! request (B = 1: single requests, otherwise the batch endpoint), while following
//! completions over Server-Sent Events, and reports tasks/s end to end, the submit
//! rate and submit→completion latency percentiles. `--latency` submits one task at a
//! time with `?wait` on an idle system. `--stream` measures live streaming (see
//! `stream.rs`). Without `--url` it measures an embedded instance on a temporary
//! directory.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use self::load::{behind, latency, throughput};
use self::report::{mb, print_summary, print_table, summarize};
use self::stream::stream;
use self::target::{connect, queue_backlog, register_agent, server_rss, start_remote_workers};
use self::websockets::websockets;

mod completions;
mod http;
mod load;
mod report;
mod stream;
mod target;
mod websockets;

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
    /// Spread the tasks over N concurrency keys: the load runs on `bench-keyed`, an echo
    /// agent whose `concurrency_key` is the input's `k` (dispatch takes turns by key).
    #[arg(long, value_name = "N")]
    pub keys: Option<usize>,
    /// Run the load on `bench-rated`, an echo agent with a rate limit of N starts a
    /// second (the limiter's cost; set N above the throughput to measure only that).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Fairness: queue N one-second tasks of one key of `bench-fair` (a `sleep` agent
    /// keyed by the input's `k`, at most 1,000 running per key), then measure another
    /// key's instant tasks one at a time (as --latency) behind that backlog.
    #[arg(long, value_name = "N")]
    pub behind: Option<usize>,
    /// Streaming: N tasks at once, each sending --tokens-per-s partial events a second for
    /// --stream-seconds from an SDK worker in this process, each followed over SSE by a
    /// client of its own; reports the worker → follower delay and the server's CPU per
    /// token (use --url with a server of its own for a CPU figure of the server alone).
    #[arg(long, value_name = "N")]
    pub stream: Option<usize>,
    #[arg(long, default_value_t = 1_000)]
    pub tokens_per_s: u64,
    #[arg(long, default_value_t = 10)]
    pub stream_seconds: u64,
}

/// The agents of `--keys`, `--behind` and `--rate-limit`.
pub const KEYED_AGENT: &str = "bench-keyed";
pub const FAIR_AGENT: &str = "bench-fair";
/// `bench-fair`'s `concurrency_per_key`: a customer's backlog takes at most this many
/// slots, so the other key's tasks measure dispatch, not waiting for a free slot.
const FAIR_PER_KEY: u32 = 1_000;
pub const RATED_AGENT: &str = "bench-rated";

/// The agent the tasks of `--backlog` wait for: a remote agent with no worker.
pub const BACKLOG_AGENT: &str = "bench-backlog";

/// The agent the remote SDK workers of `--remote` serve.
pub const REMOTE_AGENT: &str = "bench-remote-echo";

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
    if args.websockets.is_some() || args.stream.is_some() {
        let report = match (args.websockets, args.stream) {
            (Some(n), _) => websockets(&target, &args, n).await?,
            (None, n) => stream(&target, &args, n.unwrap_or(0)).await?,
        };
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
    if args.keys.is_some() {
        anyhow::ensure!(args.keys != Some(0), "--keys must be at least 1");
        register_agent(
            &target,
            json!({"name": KEYED_AGENT, "kind": "echo", "concurrency_key": "/k"}),
        )
        .await?;
        args.agent = KEYED_AGENT.to_owned();
    }
    if args.behind.is_some() {
        register_agent(
            &target,
            json!({"name": FAIR_AGENT, "kind": "sleep", "concurrency_key": "/k",
                   "concurrency_per_key": FAIR_PER_KEY}),
        )
        .await?;
        args.agent = FAIR_AGENT.to_owned();
    }
    if let Some(limit) = args.rate_limit {
        anyhow::ensure!(limit > 0, "--rate-limit must be at least 1");
        register_agent(
            &target,
            json!({"name": RATED_AGENT, "kind": "echo", "rate_limit": {"limit": limit, "period_s": 1}}),
        )
        .await?;
        args.agent = RATED_AGENT.to_owned();
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
        let mut report = if let Some(n) = args.behind {
            behind(&target, &args, n).await?
        } else if args.latency {
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
