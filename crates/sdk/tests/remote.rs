//! Remote workers end to end: the real server in-process, the example SDK worker as real
//! processes, and a hand-driven protocol client for the edge cases.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::testing::*;
use switchyard_core::auth::Scope;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(app: &TestApp, key: &str, name: &str, slots: u32) -> WorkerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard-example-worker"))
            .arg(&app.base)
            .env("SWITCHYARD_API_KEY", key)
            .env("WORKER_NAME", name)
            .env("WORKER_SLOTS", slots.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example worker starts");
        WorkerProcess(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn wait_for_workers(app: &TestApp, n: usize) {
    let start = Instant::now();
    loop {
        let (_, workers) = app.get("/api/v1/workers").await;
        let remote = workers["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["kind"] == "remote")
            .count();
        if remote >= n {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{n} remote workers never connected: {workers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_workers_run_tasks_end_to_end() {
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let _worker = WorkerProcess::start(&app, &key, "w1", 4);
    wait_for_workers(&app, 1).await;
    let (_, agent) = app.get("/api/v1/agents/wordcount").await;
    assert_eq!(
        agent["kind"], "remote",
        "the worker registered its agent: {agent}"
    );
    assert_eq!(agent["input_schema"]["required"], json!(["text"]));

    let (status, task) = app
        .post(
            "/api/v1/tasks?wait=30s",
            json!({"agent": "wordcount", "input": {"text": "one two three"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(task["output"]["words"], 3);
    assert_eq!(task["attempts"][0]["worker"], "w1");

    // Its live events were recorded in order: log, partials, progress, result.
    let (status, logs) = app
        .get(&format!(
            "/api/v1/tasks/{}/logs",
            task["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logs["items"][0]["message"], "counting 3 words");

    // Validation still happens at submission, against the schema the worker declared.
    let (status, err) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "wordcount", "input": {"text": 5}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );

    // Many tasks flow through the worker's slots.
    let tasks: Vec<Value> = (0..40)
        .map(|i| json!({"agent": "wordcount", "input": {"text": "x ".repeat(i + 1)}}))
        .collect();
    let (_, batch) = app
        .post("/api/v1/tasks/batch", json!({"tasks": tasks}))
        .await;
    for (i, t) in batch["items"].as_array().unwrap().iter().enumerate() {
        let done = app
            .wait_status(t["id"].as_str().unwrap(), &["succeeded"])
            .await;
        assert_eq!(done["output"]["words"], i + 1);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_task_completes_elsewhere_exactly_once() {
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let mut w1 = WorkerProcess::start(&app, &key, "w1", 1);
    let mut w2 = WorkerProcess::start(&app, &key, "w2", 1);
    wait_for_workers(&app, 2).await;
    let text = "word ".repeat(30);
    let t = app
        .submit("wordcount", json!({"text": text, "delay_ms": 100}))
        .await;
    let id = t["id"].as_str().unwrap();
    let running = app.wait_status(id, &["running"]).await;
    let first = running["attempts"][0]["worker"]
        .as_str()
        .unwrap()
        .to_owned();
    if first == "w1" {
        w1.kill9()
    } else {
        w2.kill9()
    }

    let done = app.wait_status(id, &["succeeded"]).await;
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["error"]["code"], "worker_lost");
    assert_ne!(
        attempts[1]["worker"].as_str().unwrap(),
        first,
        "the other worker finished it"
    );
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a["status"] == "succeeded")
            .count(),
        1,
        "exactly once"
    );
    assert_eq!(done["output"]["words"], 30);
    app.stop().await;
}

/// A protocol-level worker driven by hand.
struct RawWorker {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl RawWorker {
    async fn connect(app: &TestApp, key: &str, agent: &str, slots: u32) -> RawWorker {
        RawWorker::hello(
            app,
            key,
            json!({"type": "hello", "name": "raw", "slots": slots, "agents": [{"name": agent}]}),
        )
        .await
    }

    /// Connects and says `hello`, which the server must welcome.
    async fn hello(app: &TestApp, key: &str, hello: Value) -> RawWorker {
        let url = format!("{}/api/v1/workers/ws", app.base.replace("http://", "ws://"));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut w = RawWorker { socket };
        w.send(hello).await;
        assert_eq!(w.recv().await["type"], "welcome");
        w
    }

    async fn send(&mut self, v: Value) {
        self.socket
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> Value {
        self.recv_within(WAIT).await.expect("a message in time")
    }

    async fn recv_within(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// The next message of a given type, skipping others.
    async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return m;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_results_are_rejected_and_drain_takes_nothing_new() {
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let mut w = RawWorker::connect(&app, &key, "manual", 2).await;
    let t = app.submit("manual", json!({"n": 1})).await;
    let assign = w.expect("assign").await;
    assert_eq!(assign["task_id"], t["id"]);
    assert_eq!(assign["input"], json!({"n": 1}));
    let attempt = assign["attempt"].as_u64().unwrap();

    // Cancel it; the worker ignores the request; the server forces it after the grace period.
    let id = t["id"].as_str().unwrap();
    let (status, _) = app
        .post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let cancel = w.expect("cancel").await;
    assert_eq!(
        (cancel["task_id"].clone(), cancel["attempt"].as_u64()),
        (t["id"].clone(), Some(attempt))
    );
    app.wait_status(id, &["cancelled"]).await;
    w.send(json!({"type": "result", "task_id": id, "attempt": attempt, "output": {"late": true}}))
        .await;
    let ack = w.expect("ack").await;
    assert_eq!(
        ack["accepted"], false,
        "a result from a lost lease is rejected"
    );
    assert_eq!(
        app.task(id).await["status"],
        "cancelled",
        "and never recorded"
    );

    // Results for tasks never assigned are rejected too; malformed frames get an error, not a disconnect.
    w.send(json!({"type": "result", "task_id": uuid::Uuid::now_v7(), "attempt": 1, "output": 1}))
        .await;
    assert_eq!(w.expect("ack").await["accepted"], false);
    w.socket
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(w.expect("error").await["code"], "malformed_message");

    // Drain: finish what you have, get nothing new.
    let a = app.submit("manual", json!({"n": 2})).await;
    let b = app.submit("manual", json!({"n": 3})).await;
    let first = w.expect("assign").await;
    let second = w.expect("assign").await;
    let c = app.submit("manual", json!({"n": 4})).await;
    w.send(json!({"type": "drain"})).await;
    w.expect("draining").await;
    for assign in [&first, &second] {
        w.send(json!({"type": "result", "task_id": assign["task_id"], "attempt": assign["attempt"], "output": {"ok": true}})).await;
        assert_eq!(w.expect("ack").await["accepted"], true);
    }
    for t in [&a, &b] {
        app.wait_status(t["id"].as_str().unwrap(), &["succeeded"])
            .await;
    }
    while let Some(m) = w.recv_within(Duration::from_millis(800)).await {
        assert_ne!(m["type"], "assign", "nothing new after drain: {m}");
    }
    assert_eq!(
        app.task(c["id"].as_str().unwrap()).await["status"],
        "queued"
    );
    drop(w);
    let mut next = RawWorker::connect(&app, &key, "manual", 1).await;
    assert_eq!(
        next.expect("assign").await["task_id"],
        c["id"],
        "the waiting task goes to the next worker"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_need_the_worker_scope() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/workers/ws", app.base.replace("http://", "ws://"));
    let read_key = app.api_key(&[Scope::Read]).await;
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {read_key}").parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("a read key must not connect as a worker: {other:?}"),
    }
    let req = url.into_client_request().unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        other => panic!("no credentials must not connect: {other:?}"),
    }
    // The SDK reports a refused key instead of retrying forever.
    let err = switchyard_sdk::Worker::connect(app.base.clone(), read_key)
        .agent("x", |_, _| async { Ok(json!(null)) })
        .run_until(tokio::time::sleep(WAIT))
        .await
        .unwrap_err();
    assert!(
        matches!(err, switchyard_sdk::SdkError::Refused { .. }),
        "{err}"
    );
    // A worker cannot take over a built-in agent.
    let key = app.api_key(&[Scope::Worker]).await;
    let err = switchyard_sdk::Worker::connect(app.base.clone(), key)
        .agent("echo", |_, _| async { Ok(json!(null)) })
        .run_until(tokio::time::sleep(WAIT))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("built-in"), "{err}");
    app.stop().await;
}

/// A worker may declare up to the maximum slots and receive that many assignments at once
/// while it is busy: the server queues them all for it instead of cutting it off as a slow
/// consumer (it used to queue only 1,024 frames, so a burst to a 2,048-slot worker closed
/// the connection, and its tasks went round in reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_set_of_assignments_fits_a_worker_that_is_not_reading() {
    const SLOTS: usize = 4_096;
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let mut w = RawWorker::connect(&app, &key, "burst", SLOTS as u32).await;
    // 2 KiB per input, 8 MiB in all: more than the socket buffers hold, so the assignments
    // wait in the server's queue while the worker does not read.
    let pad = "x".repeat(2048);
    const PER_BATCH: usize = 256; // under the batch and body limits
    for chunk in 0..SLOTS / PER_BATCH {
        let tasks: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"agent": "burst", "input": {"n": chunk * PER_BATCH + i, "pad": pad}}))
            .collect();
        let (status, body) = app
            .post("/api/v1/tasks/batch", json!({ "tasks": tasks }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut assigned = std::collections::HashSet::new();
    while assigned.len() < SLOTS {
        let m = w.recv().await;
        assert_ne!(m["type"], "error", "{m}");
        if m["type"] == "assign" {
            assigned.insert(m["input"]["n"].as_u64().unwrap());
        }
    }
    assert_eq!(
        assigned.len(),
        SLOTS,
        "every task assigned once, on one connection"
    );
    app.stop().await;
}

/// The agent `name` once `check` holds for it.
async fn agent_when(app: &TestApp, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, agent) = app.get(&format!("/api/v1/agents/{name}")).await;
        if status == StatusCode::OK && check(&agent) {
            return agent;
        }
        assert!(
            start.elapsed() < WAIT,
            "agent {name} never matched: {agent}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A worker's declared retry policy replaces the agent's on every deployment; a declaration
/// without one keeps it; a policy the server cannot take refuses the hello, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_retry_policy_is_the_agent_s() {
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let serve = |retry: Option<switchyard_sdk::RetryDecl>| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = switchyard_sdk::Worker::connect(app.base.clone(), key.clone()).declare(
            switchyard_sdk::AgentDecl {
                retry,
                ..switchyard_sdk::AgentDecl::new("flaky")
            },
            |_, _| async { Err(switchyard_sdk::TaskError::retryable("always")) },
        );
        let running = tokio::spawn(async move {
            worker
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
        });
        (stop, running)
    };

    let (stop, running) = serve(Some(switchyard_sdk::RetryDecl {
        max_attempts: Some(2),
        base_ms: Some(50),
        cap_ms: Some(100),
    }));
    let policy = json!({"max_attempts": 2, "base_ms": 50, "cap_ms": 100});
    agent_when(&app, "flaky", |a| a["retry"] == policy).await;
    let task = app.submit("flaky", json!({})).await;
    let done = app
        .wait_status(task["id"].as_str().unwrap(), &["dead"])
        .await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), 2, "{done}");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    // No policy declared: the agent keeps its own (the task runs only once the worker has
    // declared its agent).
    let (stop, running) = serve(None);
    let task = app.submit("flaky", json!({})).await;
    let done = app
        .wait_status(task["id"].as_str().unwrap(), &["dead"])
        .await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), 2, "{done}");
    let (_, agent) = app.get("/api/v1/agents/flaky").await;
    assert_eq!(agent["retry"], policy);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    // A new policy: what it leaves out takes the defaults.
    let (stop, running) = serve(Some(switchyard_sdk::RetryDecl {
        max_attempts: Some(3),
        ..Default::default()
    }));
    agent_when(&app, "flaky", |a| {
        a["retry"] == json!({"max_attempts": 3, "base_ms": 200, "cap_ms": 30000})
    })
    .await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    let (_, running) = serve(Some(switchyard_sdk::RetryDecl {
        max_attempts: Some(0),
        ..Default::default()
    }));
    let err = running.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("retry.max_attempts"), "{err}");
    app.stop().await;
}

/// Durable steps through the Rust SDK: a retry does not run the steps that succeeded
/// before, a failed step runs again, and the server's refusals reach the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_steps_run_once_per_task() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let app = TestApp::spawn_with(|c| c.queue.max_step_output_bytes = 1_000).await;
    let key = app.api_key(&[Scope::Worker]).await;
    let runs: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let counted = runs.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = switchyard_sdk::Worker::connect(app.base.clone(), key).declare(
        switchyard_sdk::AgentDecl {
            retry: Some(switchyard_sdk::RetryDecl {
                max_attempts: Some(3),
                base_ms: Some(10),
                cap_ms: Some(10),
            }),
            ..switchyard_sdk::AgentDecl::new("stepper")
        },
        move |input: Value, ctx: switchyard_sdk::TaskContext| {
            let runs = counted.clone();
            async move {
                if input["big"].as_bool() == Some(true) {
                    ctx.step("big", || async { Ok("x".repeat(2_000)) }).await?;
                    return Ok(json!("unreachable"));
                }
                let attempt = ctx.attempt;
                let a: u32 = ctx
                    .step("a", || async {
                        runs[0].fetch_add(1, Ordering::SeqCst);
                        Ok(attempt)
                    })
                    .await?;
                // The same name again in one run: the first result, no second run.
                let again: u32 = ctx
                    .step("a", || async {
                        runs[3].fetch_add(1, Ordering::SeqCst);
                        Ok(99)
                    })
                    .await?;
                let b: String = ctx
                    .step("b", || async {
                        runs[1].fetch_add(1, Ordering::SeqCst);
                        if attempt == 1 {
                            Err(switchyard_sdk::TaskError::retryable("b is busy").with_code("busy"))
                        } else {
                            Ok(format!("b{attempt}"))
                        }
                    })
                    .await?;
                let c: Value = ctx
                    .step("c", || async {
                        runs[2].fetch_add(1, Ordering::SeqCst);
                        Ok(json!({"run": attempt}))
                    })
                    .await?;
                Ok(json!({"a": a, "again": again, "b": b, "c": c}))
            }
        },
    );
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    wait_for_workers(&app, 1).await;

    let task = app.submit("stepper", json!({})).await;
    let id = task["id"].as_str().unwrap();
    let done = app.wait_status(id, &["succeeded", "dead"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["output"],
        json!({"a": 1, "again": 1, "b": "b2", "c": {"run": 2}})
    );
    let counts: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert_eq!(
        counts,
        [1, 2, 1, 0],
        "a once, b failed once then ran again, c once"
    );
    let (status, steps) = app.get(&format!("/api/v1/tasks/{id}/steps")).await;
    assert_eq!(status, StatusCode::OK, "{steps}");
    let steps = steps["items"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a", "succeeded", 1),
            ("b", "succeeded", 2),
            ("c", "succeeded", 2)
        ]
    );
    assert_eq!(steps[1]["output"], "b2");
    assert!(steps[1].get("error").is_none(), "{}", steps[1]);
    let (_, first) = app.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(first["attempts"][0]["error"]["code"], "busy", "{first}");

    // Over queue.max_step_output_bytes: a permanent failure naming the limit.
    let big = app.submit("stepper", json!({"big": true})).await;
    let dead = app
        .wait_status(big["id"].as_str().unwrap(), &["dead"])
        .await;
    assert_eq!(dead["error"]["code"], "step_output_too_large", "{dead}");
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 1);

    // Steps of another task are not visible without the right to read it; unknown tasks 404.
    let (status, _) = app
        .get(&format!("/api/v1/tasks/{}/steps", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.stop().await;
}

/// The protocol's answers to steps a worker may not record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_outside_a_held_attempt_are_refused() {
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let mut w = RawWorker::connect(&app, &key, "manual-steps", 1).await;
    let task = app.submit("manual-steps", json!({})).await;
    let assign = w.expect("assign").await;
    assert_eq!(assign["task_id"], task["id"]);
    assert!(
        assign.get("steps").is_none(),
        "a first run has no steps: {assign}"
    );
    let (task_id, attempt) = (assign["task_id"].clone(), assign["attempt"].clone());
    let step = |name: &str, attempt: &Value| {
        json!({"type": "step", "task_id": task_id, "attempt": attempt, "name": name,
               "output": {"n": 1}, "duration_ms": 5})
    };
    w.send(step("", &attempt)).await;
    let refused = w.expect("step_recorded").await;
    assert_eq!(
        (&refused["accepted"], &refused["code"]),
        (&json!(false), &json!("invalid_step")),
        "{refused}"
    );
    w.send(step("fetch", &json!(7))).await;
    let refused = w.expect("step_recorded").await;
    assert_eq!(refused["code"], "lease_lost", "{refused}");
    w.send(step("fetch", &attempt)).await;
    let recorded = w.expect("step_recorded").await;
    assert_eq!(
        (&recorded["accepted"], &recorded["name"]),
        (&json!(true), &json!("fetch"))
    );
    // The attempt fails; the next assignment carries the step.
    w.send(
        json!({"type": "error", "task_id": task_id, "attempt": attempt,
                  "class": "retryable", "message": "again"}),
    )
    .await;
    let again = w.expect("assign").await;
    assert_eq!(again["steps"], json!({"fetch": {"n": 1}}), "{again}");
    app.stop().await;
}

/// Runs `worker` in the background until the returned sender fires (or is dropped).
fn serve(
    worker: switchyard_sdk::WorkerBuilder,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), switchyard_sdk::SdkError>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    (stop, running)
}

/// Tasks waiting for a signal hold no worker slot: two slots, ten tasks waiting at once.
/// A signal sent before the wait is kept for it, one sent during the wait wakes the task,
/// one sent after it finished is refused; the REST endpoint's errors are clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tasks_hold_no_slot_and_signals_wake_them() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let app = TestApp::spawn_with(|c| c.queue.max_signal_bytes = 1_000).await;
    let key = app.api_key(&[Scope::Worker]).await;
    let before_wait = Arc::new(AtomicUsize::new(0));
    let counted = before_wait.clone();
    let worker = switchyard_sdk::Worker::connect(app.base.clone(), key)
        .slots(2)
        .agent(
            "approver",
            move |input: Value, ctx: switchyard_sdk::TaskContext| {
                let before_wait = counted.clone();
                async move {
                    let n: u32 = ctx
                        .step("prepare", || async {
                            before_wait.fetch_add(1, Ordering::SeqCst);
                            Ok(input["n"].as_u64().unwrap_or(0) as u32)
                        })
                        .await?;
                    if input["nap_ms"].is_u64() {
                        let ms = input["nap_ms"].as_u64().unwrap();
                        ctx.sleep("nap", Duration::from_millis(ms)).await?;
                    }
                    let payload: Value = ctx.wait_for_signal("approval", None).await?;
                    Ok(json!({"n": n, "payload": payload, "run": ctx.attempt}))
                }
            },
        );
    let (stop, running) = serve(worker);
    wait_for_workers(&app, 1).await;

    let mut ids = Vec::new();
    for n in 0..10 {
        let t = app.submit("approver", json!({"n": n})).await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let t = app.wait_status(id, &["waiting"]).await;
        assert_eq!(t["wait"]["kind"], "signal", "{t}");
        assert_eq!(t["wait"]["signal"], "approval", "{t}");
    }
    let (_, workers) = app.get("/api/v1/workers").await;
    let remote = workers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "remote")
        .unwrap();
    assert_eq!(remote["slots"], 2, "{remote}");
    for (n, id) in ids.iter().enumerate() {
        let (status, body) = app
            .post(
                &format!("/api/v1/tasks/{id}/signals/approval"),
                json!({"ok": n}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["resumed"], true, "{body}");
    }
    for (n, id) in ids.iter().enumerate() {
        let done = app.wait_status(id, &["succeeded", "dead"]).await;
        assert_eq!(
            done["output"],
            json!({"n": n, "payload": {"ok": n}, "run": 2}),
            "{done}"
        );
        let attempts = done["attempts"].as_array().unwrap();
        assert_eq!(attempts[0]["status"], "suspended", "{done}");
    }
    assert_eq!(
        before_wait.load(Ordering::SeqCst),
        10,
        "each task's step ran once"
    );

    // Sent while the task sleeps (before its signal wait): kept, then taken by the wait.
    let t = app.submit("approver", json!({"n": 7, "nap_ms": 300})).await;
    let id = t["id"].as_str().unwrap();
    let napping = app.wait_status(id, &["waiting"]).await;
    assert_eq!(napping["wait"]["kind"], "sleep", "{napping}");
    let (status, body) = app
        .post(
            &format!("/api/v1/tasks/{id}/signals/approval"),
            json!("early \u{0} bird"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["resumed"], false, "kept: {body}");
    let done = app.wait_status(id, &["succeeded", "dead"]).await;
    assert_eq!(done["output"]["payload"], "early \u{0} bird", "{done}");
    assert_eq!(
        done["output"]["run"], 2,
        "run 1 slept; run 2 found the kept signal and went on"
    );

    // After the end: refused. Unknown task, bad name, too large, no right: clear errors.
    let signal = |id: &str, name: &str| format!("/api/v1/tasks/{id}/signals/{name}");
    let (status, body) = app.post(&signal(id, "approval"), json!(1)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "task_finished")
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, body) = app.post(&signal(&unknown, "approval"), json!(1)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "task_not_found")
    );
    let (status, body) = app.post(&signal(id, &"x".repeat(201)), json!(1)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    let (status, body) = app
        .post(&signal(id, "approval"), json!("y".repeat(2_000)))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{body}"
    );
    let reader = app.api_key(&[Scope::Read]).await;
    let (status, _) = app
        .call(
            "POST",
            &signal(id, "approval"),
            Some(&reader),
            Some(json!(1)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.stop().await;
}

/// A parent spawns 100 children served by another worker and joins them; a retry after
/// the join spawns nothing new. Cancelling a parent that waits on its children cancels them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_joins_children_run_by_another_worker() {
    const CHILDREN: u64 = 100;
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let parents = switchyard_sdk::Worker::connect(app.base.clone(), key.clone())
        .name("parents")
        .declare(
            switchyard_sdk::AgentDecl {
                retry: Some(switchyard_sdk::RetryDecl {
                    max_attempts: Some(3),
                    base_ms: Some(10),
                    cap_ms: Some(10),
                }),
                ..switchyard_sdk::AgentDecl::new("fan-out")
            },
            |input: Value, ctx: switchyard_sdk::TaskContext| async move {
                let agent = input["agent"].as_str().unwrap_or("square").to_owned();
                let mut ids = Vec::new();
                for n in 0..input["children"].as_u64().unwrap_or(0) {
                    ids.push(ctx.spawn(&agent, json!({ "n": n }), None).await?);
                }
                let keyed = ctx.spawn(&agent, json!({"n": 0}), Some("extra")).await?;
                ids.push(keyed);
                let results = ctx.join(&ids).await?;
                // The first run after the join fails: the next one must not spawn again.
                if ctx.attempt == 2 {
                    return Err(switchyard_sdk::TaskError::retryable("once more"));
                }
                let mut sum = 0;
                for r in results {
                    sum += r.map_err(|f| switchyard_sdk::TaskError::permanent(f.status))?["sq"]
                        .as_u64()
                        .unwrap_or(0);
                }
                Ok(json!({ "sum": sum, "children": ids.len() }))
            },
        );
    let children = switchyard_sdk::Worker::connect(app.base.clone(), key)
        .name("children")
        .slots(8)
        .agent("square", |input: Value, _ctx| async move {
            let n = input["n"].as_u64().unwrap_or(0);
            Ok(json!({ "sq": n * n }))
        });
    let (stop_parents, parents) = serve(parents);
    wait_for_workers(&app, 1).await;

    // The children's worker comes once the parent waits for them: the join suspends.
    app.register(json!({"name": "square", "kind": "remote"}))
        .await;
    let started = Instant::now();
    let t = app.submit("fan-out", json!({"children": CHILDREN})).await;
    let id = t["id"].as_str().unwrap();
    let waiting = app.wait_status(id, &["waiting"]).await;
    assert_eq!(waiting["wait"]["kind"], "children", "{waiting}");
    let (stop_children, children) = serve(children);
    let done = app.wait_status(id, &["succeeded", "dead"]).await;
    let elapsed = started.elapsed();
    let expected: u64 = (0..CHILDREN).map(|n| n * n).sum();
    assert_eq!(
        done["output"],
        json!({"sum": expected, "children": CHILDREN + 1}),
        "{done}"
    );
    let (_, listed) = app
        .get(&format!("/api/v1/tasks?parent_id={id}&limit=500"))
        .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len() as u64,
        CHILDREN + 1,
        "every child once, across three runs"
    );
    let statuses: Vec<&str> = done["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0], "suspended", "{done}");
    eprintln!("100 children spawned, run and joined in {elapsed:?}");

    // Children of an agent nobody serves stay queued; cancelling the waiting parent
    // cancels it at once, and them with it.
    app.register(json!({"name": "idle", "kind": "remote"}))
        .await;
    let t = app
        .submit("fan-out", json!({"children": 3, "agent": "idle"}))
        .await;
    let id = t["id"].as_str().unwrap();
    let waiting = app.wait_status(id, &["waiting"]).await;
    assert_eq!(waiting["wait"]["kind"], "children", "{waiting}");
    assert_eq!(waiting["wait"]["children"].as_array().unwrap().len(), 4);
    let (status, cancelled) = app
        .post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    for child in waiting["wait"]["children"].as_array().unwrap() {
        let c = app
            .wait_status(child.as_str().unwrap(), &["cancelled"])
            .await;
        assert_eq!(c["parent_id"], id);
    }
    stop_parents.send(()).unwrap();
    stop_children.send(()).unwrap();
    parents.await.unwrap().unwrap();
    children.await.unwrap().unwrap();
    app.stop().await;
}

/// A thousand tasks sleep at once on a worker with four slots: none holds a slot, and
/// every one ran its first part exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sleeping_tasks_hold_no_slot() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use switchyard_core::store::TaskQuery;
    use switchyard_core::task::TaskStatus;
    const TASKS: usize = 1_000;
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let started = Arc::new(AtomicUsize::new(0));
    let counted = started.clone();
    let worker = switchyard_sdk::Worker::connect(app.base.clone(), key)
        .slots(4)
        .agent(
            "sleeper",
            move |_input: Value, ctx: switchyard_sdk::TaskContext| {
                let started = counted.clone();
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    ctx.sleep("nap", Duration::from_secs(3_600)).await?;
                    Ok(json!("woke"))
                }
            },
        );
    let (stop, running) = serve(worker);
    wait_for_workers(&app, 1).await;
    let tasks: Vec<Value> = (0..TASKS)
        .map(|_| json!({"agent": "sleeper", "input": {}}))
        .collect();
    let (status, body) = app
        .post("/api/v1/tasks/batch", json!({ "tasks": tasks }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let query = TaskQuery {
        agent: Some("sleeper".into()),
        statuses: vec![TaskStatus::Waiting],
        limit: TASKS as u32,
        ..TaskQuery::default()
    };
    let start = Instant::now();
    loop {
        let waiting = app.store().list_tasks(&query).await.unwrap().len();
        if waiting == TASKS {
            break;
        }
        assert!(
            start.elapsed() < WAIT * 4,
            "only {waiting} of {TASKS} tasks are waiting"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{TASKS} tasks asleep in {:?}", start.elapsed());
    assert_eq!(started.load(Ordering::SeqCst), TASKS, "each ran once");
    let (_, workers) = app.get("/api/v1/workers").await;
    let remote = workers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "remote")
        .cloned()
        .unwrap();
    assert_eq!(remote["slots"], 4, "{remote}");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.stop().await;
}

/// A remote worker reads an input file through its signed URL and writes artifacts
/// (bytes and a file streamed from disk) through the attempt's upload URL, without
/// storage credentials; the task's artifacts are listed and downloadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_worker_reads_input_files_and_writes_artifacts() {
    use sha2::Digest;
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_path_buf();
    let worker = switchyard_sdk::Worker::connect(app.base.clone(), key).agent(
        "filer",
        move |input: Value, ctx: switchyard_sdk::TaskContext| {
            let scratch = scratch.clone();
            async move {
                let id = input["doc"]["$file"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let info = ctx.files().get(&id).cloned();
                let content = ctx.download(&id).await?;
                let copy = scratch.join("copy.bin");
                ctx.download_to(&id, &copy).await?;
                let upper = content.to_ascii_uppercase();
                let a = ctx.upload("upper.txt", upper, Some("text/plain")).await?;
                let b = ctx.upload_path("copy.bin", &copy, None).await?;
                let unknown = ctx.download("00000000-0000-0000-0000-000000000000").await;
                Ok(json!({
                    "name": info.map(|f| f.name), "upper": {"$file": a}, "copy": {"$file": b},
                    "unknown": unknown.err().and_then(|e| e.code),
                }))
            }
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    wait_for_workers(&app, 1).await;
    let body = b"hello files".repeat(100_000);
    let uploaded: Value = app
        .client
        .post(app.url("/api/v1/files?name=in.txt"))
        .bearer_auth(&app.admin)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, task) = app
        .post(
            "/api/v1/tasks?wait=30s",
            json!({"agent": "filer", "input": {"doc": {"$file": uploaded["id"]}}}),
        )
        .await;
    assert!(status.is_success(), "{task}");
    assert_eq!(task["status"], "succeeded", "{task}");
    let output = &task["output"];
    assert_eq!(output["name"], "in.txt");
    assert_eq!(output["unknown"], "unknown_file");
    let id = task["id"].as_str().unwrap();
    let (_, artifacts) = app.get(&format!("/api/v1/tasks/{id}/artifacts")).await;
    let items = artifacts["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{artifacts}");
    for item in items {
        assert_eq!(item["task_id"], task["id"]);
        assert_eq!(
            item["owner"], uploaded["owner"],
            "owned by the task's owner"
        );
    }
    let upper = output["upper"]["$file"].as_str().unwrap();
    let got = app
        .client
        .get(app.url(&format!("/api/v1/files/{upper}/content")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &body.to_ascii_uppercase()[..]);
    let copy = items.iter().find(|f| f["name"] == "copy.bin").unwrap();
    assert_eq!(
        copy["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&body)),
        "the streamed copy has the input's bytes"
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_ignores_its_timeout_is_failed_by_the_server() {
    let app = TestApp::spawn().await;
    let key = app.api_key(&[Scope::Worker]).await;
    let hello = json!({"type": "hello", "name": "stubborn", "slots": 1, "agents": [
        {"name": "stubborn", "timeout_ms": 300, "retry": {"max_attempts": 1}}
    ]});
    let mut w = RawWorker::hello(&app, &key, hello).await;
    let t = app.submit("stubborn", json!({})).await;
    let id = t["id"].as_str().unwrap();
    let assign = w.expect("assign").await;
    let attempt = assign["attempt"].as_u64().unwrap();
    let started = Instant::now();
    // The worker keeps its lease alive and never answers...
    let done = loop {
        w.send(json!({"type": "heartbeat"})).await;
        let task = app.task(id).await;
        if task["status"] != "running" {
            break task;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server never ended the attempt: {task}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // ...so the server ends it after the timeout (300 ms) and the grace period (1 s).
    assert!(
        started.elapsed() >= Duration::from_millis(1_200),
        "not before the timeout and the grace period: {:?}",
        started.elapsed()
    );
    assert_eq!(done["status"], "dead", "{done}");
    assert_eq!(done["error"]["code"], "timeout", "{done}");
    let cancel = w.expect("cancel").await;
    assert_eq!(
        (cancel["task_id"].as_str(), cancel["attempt"].as_u64()),
        (Some(id), Some(attempt)),
        "the worker is told to stop"
    );
    w.send(json!({"type": "result", "task_id": id, "attempt": attempt, "output": {"late": true}}))
        .await;
    assert_eq!(
        w.expect("ack").await["accepted"],
        false,
        "the late result is rejected"
    );
    let after = app.task(id).await;
    assert_eq!(
        (after["status"].clone(), after["output"].clone()),
        (json!("dead"), Value::Null)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_follower_receives_the_whole_stream_from_the_store() {
    // No replay window in memory: whatever a late follower receives comes from the store.
    let app = TestApp::spawn_with(|c| c.queue.replay_events = 1).await;
    let key = app.api_key(&[Scope::Worker]).await;
    let mut w = RawWorker::connect(&app, &key, "streamer", 1).await;
    let t = app.submit("streamer", json!({})).await;
    let id = t["id"].as_str().unwrap();
    let assign = w.expect("assign").await;
    let attempt = assign["attempt"].as_u64().unwrap();
    w.send(json!({"type": "progress", "task_id": id, "attempt": attempt, "progress": 0.5, "message": "half"}))
        .await;
    for i in 0..300 {
        w.send(json!({"type": "partial", "task_id": id, "attempt": attempt, "data": {"delta": format!("t{i} ")}}))
            .await;
    }
    w.send(json!({"type": "result", "task_id": id, "attempt": attempt, "output": {"done": true}}))
        .await;
    assert_eq!(w.expect("ack").await["accepted"], true);
    app.wait_status(id, &["succeeded"]).await;

    let events = app.events_since(id, 0).await;
    let text: String = events
        .iter()
        .filter(|e| e["kind"] == "partial")
        .map(|e| e["data"]["delta"].as_str().unwrap())
        .collect();
    let expected: String = (0..300).map(|i| format!("t{i} ")).collect();
    assert_eq!(text, expected, "every token, once, in order");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "progress" && e["message"] == "half")
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(events.last().unwrap()["kind"], "result");

    // From the middle: only what came after.
    let mid = events
        .iter()
        .find(|e| e["data"]["delta"] == "t149 ")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let rest = app.events_since(id, mid).await;
    assert_eq!(rest.iter().filter(|e| e["kind"] == "partial").count(), 150);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_bound_keeps_the_newest_and_says_what_was_cut() {
    let app = TestApp::spawn_with(|c| {
        c.queue.replay_events = 1;
        c.queue.max_stream_events = 100;
    })
    .await;
    let key = app.api_key(&[Scope::Worker]).await;
    let mut w = RawWorker::connect(&app, &key, "chatty", 1).await;
    let t = app.submit("chatty", json!({})).await;
    let id = t["id"].as_str().unwrap();
    let assign = w.expect("assign").await;
    let attempt = assign["attempt"].as_u64().unwrap();
    for i in 0..1_000 {
        w.send(json!({"type": "partial", "task_id": id, "attempt": attempt, "data": i}))
            .await;
    }
    w.send(json!({"type": "result", "task_id": id, "attempt": attempt, "output": 1}))
        .await;
    assert_eq!(w.expect("ack").await["accepted"], true);
    app.wait_status(id, &["succeeded"]).await;
    let events = app.events_since(id, 0).await;
    let kept: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "partial")
        .map(|e| e["data"].as_u64().unwrap())
        .collect();
    assert!(
        (100..356).contains(&kept.len()),
        "the last 100, and fewer than 256 waiting for the next cut: {}",
        kept.len()
    );
    assert_eq!(*kept.last().unwrap(), 999, "the newest are kept");
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "contiguous");
    let notice = events
        .iter()
        .find(|e| e["kind"] == "log" && e["level"] == "warn")
        .expect("the cut is reported");
    let dropped = kept[0];
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains(&format!("first {dropped} ")),
        "{notice}"
    );
    app.stop().await;
}
