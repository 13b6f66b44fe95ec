//! The load: task bodies written straight into bytes, the simulated clients that post
//! them, and the two modes, throughput (many clients, followed over SSE) and latency (one
//! task at a time with `?wait`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::BenchArgs;
use super::completions::{Tally, follow};
use super::http;
use super::report::{base_report, percentiles};
use super::target::Target;

pub(super) fn task_body(agent: &str, i: usize) -> Value {
    json!({ "agent": agent, "input": { "i": i } })
}

pub(super) async fn latency(target: &Target, args: &BenchArgs) -> anyhow::Result<Value> {
    latency_of(target, args, &TaskBody::keyed(&args.agent, args.keys)?).await
}

/// `--behind N`: `N` tasks of key `a` that sleep a second each (at most 1,000 of them
/// running), then one task at a time of key `b` (submit → completion with `?wait`, no
/// sleep) while `a`'s backlog waits: how long another customer's task waits behind a
/// big one's. In queue order `b` would wait for the whole backlog (N / 1,000 seconds).
pub(super) async fn behind(target: &Target, args: &BenchArgs, n: usize) -> anyhow::Result<Value> {
    let backlog = TaskBody::of_key(&args.agent, "a", 1_000)?;
    let mut poster = Poster::connect(target).await?;
    let mut sent = 0;
    while sent < n {
        let end = (sent + 1_000).min(n);
        let (status, reply) = poster
            .post("/api/v1/tasks/batch", &backlog.batch(sent..end))
            .await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "backlog submit failed: HTTP {status}: {}",
            String::from_utf8_lossy(reply)
        );
        sent = end;
    }
    let mut report = latency_of(target, args, &TaskBody::of_key(&args.agent, "b", 0)?).await?;
    report["behind"] = n.into();
    // Proof the backlog was there all along: what of it is still queued.
    let queues: Value = target
        .client
        .get(format!("{}/api/v1/queues", target.base))
        .bearer_auth(&target.key)
        .send()
        .await?
        .json()
        .await?;
    report["backlog_still_queued"] = queues["items"]
        .as_array()
        .and_then(|q| q.iter().find(|a| a["agent"] == args.agent.as_str()))
        .map_or(Value::Null, |a| a["ready"].clone());
    Ok(report)
}

async fn latency_of(target: &Target, args: &BenchArgs, body: &TaskBody) -> anyhow::Result<Value> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut poster = Poster::connect(target).await?;
    // Warm up connections and caches.
    for i in 0..args.tasks.min(50) {
        submit_wait(&mut poster, body, i).await?;
    }
    let started = Instant::now();
    for i in 0..args.tasks {
        let t = Instant::now();
        submit_wait(&mut poster, body, i).await?;
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

/// Task bodies for the load, written straight into bytes (`{"agent":…,"input":{"i":N}}`,
/// with `"k":N % keys` for `--keys`, or a fixed key).
pub(super) struct TaskBody {
    /// `{"agent":"<agent>","input":{"i":`
    head: Vec<u8>,
    /// `--keys`: the input's `k` is `i % keys`.
    keys: Option<usize>,
    /// A fixed key and the rest of the input, as JSON text (`--behind`'s tasks).
    key: Option<String>,
}

impl TaskBody {
    pub(super) fn new(agent: &str) -> anyhow::Result<Self> {
        let mut head = b"{\"agent\":".to_vec();
        serde_json::to_writer(&mut head, agent)?;
        head.extend_from_slice(b",\"input\":{\"i\":");
        Ok(TaskBody {
            head,
            keys: None,
            key: None,
        })
    }

    /// Tasks spread over `keys` concurrency keys (`k` in the input).
    pub(super) fn keyed(agent: &str, keys: Option<usize>) -> anyhow::Result<Self> {
        Ok(TaskBody {
            keys: keys.filter(|&k| k > 0),
            ..TaskBody::new(agent)?
        })
    }

    /// Tasks of one key that sleep `ms` (the `sleep` kind).
    pub(super) fn of_key(agent: &str, key: &str, ms: u64) -> anyhow::Result<Self> {
        Ok(TaskBody {
            key: Some(format!("{},\"ms\":{ms}", serde_json::to_string(key)?)),
            ..TaskBody::new(agent)?
        })
    }

    fn write(&self, out: &mut Vec<u8>, i: usize) {
        use std::io::Write;
        out.extend_from_slice(&self.head);
        let _ = write!(out, "{i}");
        if let Some(keys) = self.keys {
            let _ = write!(out, ",\"k\":{}", i % keys);
        }
        if let Some(key) = &self.key {
            let _ = write!(out, ",\"k\":{key}");
        }
        out.extend_from_slice(b"}}");
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

pub(super) async fn throughput(target: &Target, args: &BenchArgs) -> anyhow::Result<Value> {
    let completions: Arc<Mutex<Vec<(String, Instant)>>> =
        Arc::new(Mutex::new(Vec::with_capacity(args.tasks)));
    let done = Arc::new(tokio::sync::Notify::new());
    let follower = follow(target, args, completions.clone(), done.clone()).await?;

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submitted: Arc<Mutex<HashMap<String, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(args.tasks)));
    let body = Arc::new(TaskBody::keyed(&args.agent, args.keys)?);
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
