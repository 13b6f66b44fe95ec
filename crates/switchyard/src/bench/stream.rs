//! `--stream N`: N tasks streaming partial output at once, each followed live by one
//! Server-Sent Events client; the delay from a worker's `partial` to its follower, and
//! the server's CPU time per token.
//!
//! The tasks run on an SDK worker in this process (agent [`STREAM_AGENT`]), which sends
//! `--tokens-per-s` partial events a second per task for `--stream-seconds`, each
//! stamped with the wall clock when it is sent; the followers run in this process too,
//! so the delay is measured on one clock. Worker and followers share one thread, so the
//! load generator takes at most one core. Every token goes the whole way: worker
//! WebSocket → the server, which numbers it and keeps it with the task (the stream a
//! late follower replays) → the event bus → each follower's SSE connection.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::BenchArgs;
use super::report::{base_report, percentiles};
use super::target::{Target, register_agent, server_cpu_seconds};

/// The remote agent the streaming tasks run on.
pub const STREAM_AGENT: &str = "bench-stream";

/// How long after submitting the tasks start to stream: time for every follower to
/// connect, so that what is measured is live delivery, not the replay of a backlog.
const LEAD: Duration = Duration::from_millis(1_500);

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// CPU time this thread has used, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill in.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    if ok {
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    } else {
        0.0
    }
}

/// What the streaming handler does, from its input: `tokens` partial events, `rate` a
/// second, starting at `start_us` (wall clock, microseconds).
async fn stream_tokens(input: Value, ctx: switchyard_sdk::TaskContext) -> Value {
    let tokens = input["tokens"].as_u64().unwrap_or(0);
    let rate = input["rate"].as_u64().unwrap_or(1).max(1);
    let start_us = input["start_us"].as_u64().unwrap_or(0);
    let wait = start_us.saturating_sub(now_micros());
    tokio::time::sleep(Duration::from_micros(wait)).await;
    let start = tokio::time::Instant::now();
    for i in 0..tokens {
        tokio::time::sleep_until(start + Duration::from_micros(i * 1_000_000 / rate)).await;
        ctx.partial(json!({"delta": "token ", "i": i, "t": now_micros()}))
            .await;
    }
    json!({ "tokens": tokens })
}

/// What a follower reads of each SSE event: borrowed, and only the fields it needs (the
/// load generator should leave the cores to the server).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    status: Option<&'a str>,
    data: Option<Stamp>,
}

#[derive(serde::Deserialize)]
struct Stamp {
    t: Option<u64>,
}

/// Follows one task over SSE until its final event: the delays of its partial events
/// (microseconds) and how many arrived.
async fn follow(target: &Target, id: &str) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let response = target
        .client
        .get(format!("{}/api/v1/tasks/{id}/events?since=0", target.base))
        .bearer_auth(&target.key)
        .timeout(Duration::from_secs(600))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "following {id}: HTTP {}",
        response.status()
    );
    let mut body = response.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut received = 0;
    while let Some(chunk) = body.next().await {
        let arrived = now_micros();
        // Only the new bytes (and the one before them) can complete a frame.
        let mut from = buf.len().saturating_sub(1);
        buf.extend_from_slice(&chunk?);
        let mut start = 0;
        while let Some(at) = memchr::memmem::find(&buf[from..], b"\n\n") {
            let end = from + at + 2;
            let frame = &buf[start..end];
            start = end;
            from = end;
            let Some(data) = frame
                .split(|b| *b == b'\n')
                .find_map(|l| l.strip_prefix(b"data:"))
            else {
                continue;
            };
            let event: Frame = serde_json::from_slice(data.trim_ascii())?;
            match event.kind {
                Some("partial") => {
                    let sent = event.data.and_then(|d| d.t).unwrap_or(arrived);
                    hist.record(arrived.saturating_sub(sent).max(1))?;
                    received += 1;
                }
                Some("result") | Some("error") => return Ok((hist, received)),
                Some("status") if event.status == Some("cancelled") => {
                    return Ok((hist, received));
                }
                _ => {}
            }
        }
        buf.drain(..start);
    }
    anyhow::bail!("the event stream of {id} ended before the task did")
}

pub(super) async fn stream(target: &Target, args: &BenchArgs, n: usize) -> anyhow::Result<Value> {
    anyhow::ensure!(n > 0, "--stream needs at least 1 task");
    anyhow::ensure!(args.tokens_per_s > 0, "--tokens-per-s must be at least 1");
    register_agent(target, json!({"name": STREAM_AGENT, "kind": "remote"})).await?;
    let load = Load {
        // A client of its own: its connections are driven by the load's runtime.
        target: Target {
            base: target.base.clone(),
            key: target.key.clone(),
            backend: target.backend.clone(),
            client: reqwest::Client::builder().tcp_nodelay(true).build()?,
            embedded: None,
        },
        tasks: n,
        rate: args.tokens_per_s,
        tokens: args.tokens_per_s * args.stream_seconds,
    };
    let tokens = load.tokens;
    // The load runs on a thread of its own with a single-threaded runtime: no wakeups
    // between the load generator's threads, and the rest of the cores for the server it
    // measures (an embedded one runs on this process's runtime).
    let thread = std::thread::Builder::new()
        .name("bench-stream".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(load.run())
        })?;
    let measured = tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the streaming load panicked"))??;
    let sent = tokens * n as u64;
    let mut m = base_report(target, args, "stream");
    m.remove("concurrency");
    m.remove("batch");
    m.insert("agent".into(), STREAM_AGENT.into());
    m.insert("tasks".into(), n.into());
    m.insert("followers".into(), n.into());
    m.insert("tokens_per_s_per_task".into(), args.tokens_per_s.into());
    m.insert("tokens_sent".into(), sent.into());
    m.insert("tokens_received".into(), measured.received.into());
    m.insert("seconds".into(), measured.seconds.into());
    m.insert("delay_ms".into(), percentiles(&measured.delays));
    // Near 1, the load generator's one thread was saturated: the delays then measure it,
    // not the server.
    m.insert(
        "load_cpu_share".into(),
        (measured.load_cpu_seconds / measured.streamed_seconds.max(1e-3)).into(),
    );
    if let Some(cpu) = measured.server_cpu_seconds {
        m.insert("server_cpu_seconds".into(), cpu.into());
        m.insert(
            "server_cpu_us_per_token".into(),
            (cpu * 1e6 / sent.max(1) as f64).into(),
        );
    }
    Ok(Value::Object(m))
}

/// The streaming load: its worker, its tasks and their followers.
struct Load {
    target: Target,
    tasks: usize,
    rate: u64,
    /// Tokens each task streams.
    tokens: u64,
}

/// What the load measured.
struct Measured {
    delays: Histogram<u64>,
    received: u64,
    seconds: f64,
    server_cpu_seconds: Option<f64>,
    /// The load's own CPU time, from the followers' start to the tasks' end (it is
    /// idle before the tasks start streaming).
    load_cpu_seconds: f64,
    /// From the start of the streaming to the end of the last task.
    streamed_seconds: f64,
}

impl Load {
    async fn run(self) -> anyhow::Result<Measured> {
        let (n, target) = (self.tasks, &self.target);
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = switchyard_sdk::Worker::connect(target.base.clone(), target.key.clone())
            .agent(STREAM_AGENT, |input, ctx| async move {
                Ok(stream_tokens(input, ctx).await)
            })
            .slots(u32::try_from(n).unwrap_or(u32::MAX))
            .name("bench-stream");
        let worker = tokio::spawn({
            let stop = stop.clone();
            async move { worker.run_until(stop.cancelled_owned()).await }
        });
        let cpu_before = server_cpu_seconds(target).await;
        let start_us = now_micros() + LEAD.as_micros() as u64;
        let input = json!({"tokens": self.tokens, "rate": self.rate, "start_us": start_us});
        let body = json!({ "tasks": (0..n).map(|_| json!({"agent": STREAM_AGENT, "input": input})).collect::<Vec<_>>() });
        let submitted: Value = target
            .client
            .post(format!("{}/api/v1/tasks/batch", target.base))
            .bearer_auth(&target.key)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let ids: Vec<String> = submitted["items"]
            .as_array()
            .context("the batch answer lists no tasks")?
            .iter()
            .filter_map(|t| t["id"].as_str().map(str::to_owned))
            .collect();
        anyhow::ensure!(ids.len() == n, "submitted {} of {n} tasks", ids.len());
        let started = Instant::now();
        let cpu_started = thread_cpu_seconds();
        let followed = futures::future::join_all(ids.iter().map(|id| follow(target, id))).await;
        let seconds = started.elapsed().as_secs_f64();
        let load_cpu_seconds = thread_cpu_seconds() - cpu_started;
        let streamed_seconds = now_micros().saturating_sub(start_us) as f64 / 1e6;
        let cpu_after = server_cpu_seconds(target).await;
        stop.cancel();
        let _ = worker.await;
        let mut delays = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut received = 0;
        for f in followed {
            let (hist, got) = f?;
            delays.add(&hist)?;
            received += got;
        }
        Ok(Measured {
            delays,
            received,
            seconds,
            server_cpu_seconds: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
            load_cpu_seconds,
            streamed_seconds,
        })
    }
}
