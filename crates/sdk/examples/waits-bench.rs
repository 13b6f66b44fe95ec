//! Measures durable waits against a running server (`docs/performance.md`):
//!
//! ```sh
//! cargo run --release -p switchyard-sdk --example waits-bench -- fanout http://127.0.0.1:8080 1000 10
//! cargo run --release -p switchyard-sdk --example waits-bench -- sleepers http://127.0.0.1:8080 100000
//! ```
//!
//! `fanout P C`: P parents each spawn C children and join them; prints end-to-end tasks/s
//! (parents and children). `sleepers N`: N tasks each begin a one-hour durable sleep;
//! prints how fast they reach it (measure the server's memory and database then).
//! `SWITCHYARD_API_KEY` submits (scope `submit` or `admin`); `SWITCHYARD_WORKER_KEY`
//! serves (scope `worker`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_sdk::{TaskContext, TaskError, Worker};

const SLOTS: u32 = 256;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: waits-bench fanout URL PARENTS CHILDREN | waits-bench sleepers URL N";
    let (mode, url) = match (args.get(1), args.get(2)) {
        (Some(m), Some(u)) => (m.clone(), u.trim_end_matches('/').to_owned()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let number = |i: usize| -> u64 { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(0) };
    let key = std::env::var("SWITCHYARD_API_KEY").expect("set SWITCHYARD_API_KEY (submit scope)");
    let worker_key =
        std::env::var("SWITCHYARD_WORKER_KEY").expect("set SWITCHYARD_WORKER_KEY (worker scope)");
    let done = Arc::new(AtomicU64::new(0));
    let counted = done.clone();
    let counted_sleepers = done.clone();
    let worker = Worker::connect(url.clone(), worker_key)
        .name("waits-bench")
        .slots(SLOTS)
        .agent("bench-parent", move |input: Value, ctx: TaskContext| {
            let done = counted.clone();
            async move {
                let mut ids = Vec::new();
                for n in 0..input["children"].as_u64().unwrap_or(0) {
                    ids.push(ctx.spawn("bench-child", json!({ "n": n }), None).await?);
                }
                let joined = ctx.join(&ids).await?;
                let ok = joined.iter().filter(|r| r.is_ok()).count();
                done.fetch_add(1, Ordering::Relaxed);
                Ok(json!({ "ok": ok }))
            }
        })
        .agent("bench-child", |input: Value, _ctx| async move {
            Ok::<Value, TaskError>(input)
        })
        .agent("bench-sleeper", move |_input: Value, ctx: TaskContext| {
            let done = counted_sleepers.clone();
            async move {
                done.fetch_add(1, Ordering::Relaxed);
                ctx.sleep("nap", Duration::from_secs(3_600)).await?;
                Ok(json!("woke"))
            }
        });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    // The worker's hello registers the agents.
    loop {
        let agent = http
            .get(format!("{url}/api/v1/agents/bench-sleeper"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("the server answers");
        if agent.status().is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (agent, total, input, tasks_per_unit) = match mode.as_str() {
        "fanout" => {
            let children = number(4);
            (
                "bench-parent",
                number(3),
                json!({ "children": children }),
                1 + children,
            )
        }
        "sleepers" => ("bench-sleeper", number(3), json!({}), 1),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut submitted = 0;
    while submitted < total {
        let n = (total - submitted).min(1_000);
        let tasks: Vec<Value> = (0..n)
            .map(|_| json!({ "agent": agent, "input": input }))
            .collect();
        let response = http
            .post(format!("{url}/api/v1/tasks/batch"))
            .bearer_auth(&key)
            .json(&json!({ "tasks": tasks }))
            .send()
            .await
            .expect("submit");
        if !response.status().is_success() {
            let text = response.text().await.unwrap_or_default();
            panic!(
                "submit failed: {}",
                text.chars().take(500).collect::<String>()
            );
        }
        submitted += n;
    }
    let submit_time = started.elapsed();
    let mut last = Instant::now();
    while done.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last.elapsed() > Duration::from_secs(5) {
            last = Instant::now();
            eprintln!(
                "{} of {total} after {:.1} s",
                done.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tasks = total * tasks_per_unit;
    println!(
        "{mode}: {total} × {tasks_per_unit} tasks = {tasks} in {elapsed:.2} s ({:.0} tasks/s; submitting took {:.2} s)",
        tasks as f64 / elapsed,
        submit_time.as_secs_f64()
    );
    if mode == "sleepers" {
        // The last runs are suspending; give the server a moment to end them.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = stop.send(());
    let _ = running.await;
}
