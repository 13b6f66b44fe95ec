//! Scale-out proven with real processes, all on loopback: a PostgreSQL primary and a
//! streaming replica (initdb / pg_basebackup into temporary directories), a Redis primary
//! and replica, NGINX with `deploy/nginx.conf` (TLS termination, WebSocket upgrade),
//! three API servers and two worker processes of the real binary.
//!
//! It submits a few thousand tasks through NGINX (each with an idempotency key, retried
//! on errors as a real client would), follows some of them over SSE on a different API
//! server than the one that accepted them, SIGKILLs one API server and one worker
//! mid-run, and asserts that every task finished exactly once and that every follower
//! saw its task's final event.
//!
//! Needs the PostgreSQL server binaries, `redis-server`, `nginx` and `openssl`. When one
//! is missing the test fails in CI (`CI=true`) and prints loudly that it was skipped
//! elsewhere.
//!
//! The processes are started and stopped by [`harness`], the clients are in [`clients`];
//! this file is the scenario, one function per phase.

mod clients;
mod harness;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use clients::{
    CLIENTS, client, follow, submit, submit_many, upstream_port, wait_for_readiness,
    websocket_upgrade_status,
};
use harness::{
    Cluster, PASSWORD, PRIMARY_SETTINGS, Proc, STARTUP, Tools, http_ok, postgres_cmd, redis_cmd,
    start_cluster, tools, wait_until,
};

const ECHO_TASKS: usize = 3_000;
const FOLLOWED_TASKS: usize = 24;
/// Submitted while Redis is down.
const DEGRADED_TASKS: usize = 200;
/// Valid tasks submitted beside a client that sends bad values.
const POISON_TASKS: usize = 400;
const DEGRADED_FOLLOWED: usize = 4;
/// Submitted while PostgreSQL restarts.
const RESTART_TASKS: usize = 600;

#[test]
fn scale_out_survives_sigkill_of_an_api_server_and_a_worker() {
    let Some(tools) = tools() else { return };
    let mut run = Scenario::start(tools);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    run.proxy_terminates_tls_and_upgrades_websockets();
    let followers = runtime.block_on(async {
        run.log_in_through_the_proxy().await;
        run.files_uploaded_through_one_server_download_through_the_others()
            .await;
        run.start_a_two_second_schedule().await;
        let followers = run.follow_tasks_on_other_servers().await;
        let submitted = run.load_while_an_api_server_and_a_worker_die().await;
        let seen = Scenario::followers_finish(followers).await;
        assert_eq!(submitted, ECHO_TASKS);
        seen
    });
    run.cluster_duties_stay_with_one_worker();
    runtime.block_on(run.the_schedule_fired_each_tick_once());
    every_follower_saw_success(&followers);
    runtime.block_on(run.poison_input_beside_valid_work());
    let survivors = [run.cluster.api_ports[0], run.cluster.api_ports[2]];
    run.cluster.proc_mut("redis-primary").kill9();
    runtime.block_on(run.serve_without_redis(survivors));
    run.restart_redis();
    runtime.block_on(run.recover_when_redis_returns(survivors));
    run.restart_postgres_under_load(&runtime);
    runtime.block_on(run.every_task_finished_exactly_once_and_replicated());
    runtime.block_on(run.a_restored_deployment_holds_the_same_tasks());
    run.redis_replica_follows_its_primary();
    run.survivors_are_ready(survivors);
    runtime.block_on(run.waits_span_the_cluster(survivors));
    eprintln!("cluster test passed in {:.1?}", run.started.elapsed());
    drop(run);
}

/// Tasks that wait, served by an SDK worker on one API server: signals sent through the
/// other wake them, sleeps resume once each whichever server's waker sees them due, and
/// parents join children run by the cluster.
const WAITING_TASKS: usize = 12;
/// Fires every two seconds from the start of the scenario.
const SCHEDULE: &str = "cluster-every-2s";

/// The running cluster and what the phases share.
struct Scenario {
    tools: Tools,
    cluster: Cluster,
    http: reqwest::Client,
    /// NGINX, plain HTTP.
    base: String,
    /// Prefixes every idempotency key of this run.
    run_id: String,
    /// The admin's access token, from [`Scenario::log_in_through_the_proxy`].
    token: String,
    /// The API servers killed so far: followers move to another.
    dead: Arc<Mutex<HashSet<u16>>>,
    started: Instant,
}

impl Scenario {
    fn start(tools: Tools) -> Scenario {
        let started = Instant::now();
        let cluster = start_cluster(&tools);
        eprintln!("cluster up in {:.1?}", started.elapsed());
        Scenario {
            base: format!("http://127.0.0.1:{}", cluster.nginx_http),
            http: client(),
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            token: String::new(),
            dead: Arc::default(),
            tools,
            cluster,
            started,
        }
    }

    /// TLS termination and WebSocket upgrade through NGINX.
    fn proxy_terminates_tls_and_upgrades_websockets(&self) {
        let cluster = &self.cluster;
        if let Some(curl) = &self.tools.curl {
            let out = Command::new(curl)
                .args([
                    "-sk",
                    &format!("https://127.0.0.1:{}/readyz", cluster.nginx_tls),
                ])
                .output()
                .unwrap();
            let body = String::from_utf8_lossy(&out.stdout);
            assert!(body.contains("\"postgres\""), "HTTPS through NGINX: {body}");
        }
        let status = websocket_upgrade_status(cluster.nginx_http);
        assert!(
            status.contains(" 101 "),
            "WebSocket upgrade through NGINX: {status}"
        );
    }

    /// A session made through NGINX works on every server: sessions live in Redis.
    async fn log_in_through_the_proxy(&mut self) {
        let (http, base) = (&self.http, &self.base);
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "admin@localhost", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().expect("token").to_owned();
        for port in &self.cluster.api_ports {
            let me = http
                .get(format!("http://127.0.0.1:{port}/api/v1/auth/me"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(me.status().is_success(), "the session is valid on :{port}");
        }
        self.token = token;
    }

    /// A 24 MiB file uploaded through NGINX (streamed, past its default body limit) comes
    /// back whole from every API server, and by range: the bytes are in shared storage
    /// (S3 in CI), not on the server that took the upload.
    async fn files_uploaded_through_one_server_download_through_the_others(&self) {
        use sha2::Digest;
        const SIZE: usize = 24 << 20;
        let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        let sha = hex::encode(sha2::Sha256::digest(&body));
        let up = self
            .http
            .post(format!("{}/api/v1/files?name=cluster.bin", self.base))
            .bearer_auth(&self.token)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(up.status(), reqwest::StatusCode::CREATED);
        let file: Value = up.json().await.unwrap();
        assert_eq!(file["sha256"], sha.as_str());
        let id = file["id"].as_str().unwrap();
        for port in &self.cluster.api_ports {
            let url = format!("http://127.0.0.1:{port}/api/v1/files/{id}/content");
            let got = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap();
            assert_eq!(got.status(), reqwest::StatusCode::OK, "from :{port}");
            let got = got.bytes().await.unwrap();
            assert_eq!(hex::encode(sha2::Sha256::digest(&got)), sha, "from :{port}");
            let part = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .header("range", "bytes=1000-1999")
                .send()
                .await
                .unwrap();
            assert_eq!(part.status(), reqwest::StatusCode::PARTIAL_CONTENT);
            assert_eq!(&part.bytes().await.unwrap()[..], &body[1000..2000]);
        }
    }

    /// A schedule every two seconds, fired by both workers' schedulers from now on
    /// (through the load, and the SIGKILL of one of them).
    async fn start_a_two_second_schedule(&self) {
        let r = self
            .http
            .post(format!("{}/api/v1/schedules", self.base))
            .bearer_auth(&self.token)
            .json(
                &json!({"name": SCHEDULE, "agent": "echo", "input": {"tick": true},
                          "cron": "*/2 * * * * *"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }

    /// Ten ticks in a row, each fired once, on time: the two workers' schedulers never
    /// both fired one, nor missed one.
    async fn the_schedule_fired_each_tick_once(&self) {
        let (http, token) = (&self.http, &self.token);
        let url = format!("{}/api/v1/schedules/{SCHEDULE}", self.base);
        let shown = |_: ()| async {
            let v: Value = http
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        };
        let deadline = Instant::now() + Duration::from_secs(40);
        while shown(()).await["last_runs"].as_array().map_or(0, Vec::len) < 10 {
            assert!(
                Instant::now() < deadline,
                "ten ticks never fired: {}",
                shown(()).await
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let r = http
            .put(&url)
            .bearer_auth(token)
            .json(&json!({"agent": "echo", "cron": "*/2 * * * * *", "paused": true}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let runs = shown(()).await["last_runs"].as_array().unwrap().clone();
        let at = |r: &Value, field: &str| {
            switchyard_core::Timestamp::parse_rfc3339(r[field].as_str().unwrap()).unwrap()
        };
        let ticks: Vec<i64> = runs
            .iter()
            .map(|r| at(r, "scheduled_for").millis())
            .collect();
        for pair in ticks.windows(2) {
            assert_eq!(pair[0] - pair[1], 2_000, "a tick twice or none: {ticks:?}");
        }
        let late: Vec<u64> = runs
            .iter()
            .map(|r| at(r, "fired_at").since(at(r, "scheduled_for")))
            .collect();
        // Under the load (and a worker's SIGKILL) on two cores; idle it is a few ms.
        assert!(late.iter().all(|&ms| ms < 3_000), "fired late: {late:?} ms");
        eprintln!("schedule: 10 ticks once each, fired {late:?} ms after their time");
    }

    /// Followed tasks: a few seconds long, followed on another server than the one that
    /// accepted them.
    async fn follow_tasks_on_other_servers(&self) -> Vec<tokio::task::JoinHandle<Value>> {
        let (http, base, token, run_id) = (&self.http, &self.base, &self.token, &self.run_id);
        let mut followers = Vec::new();
        for i in 0..FOLLOWED_TASKS {
            let key = format!("{run_id}-follow-{i}");
            let body = json!({"agent": "sleep", "input": {"ms": 2_500 + 100 * i}});
            let (id, upstream) = submit(http, base, token, &key, &body).await;
            let accepted = upstream_port(upstream.as_deref()).expect("X-Switchyard-Upstream");
            let ports = self.cluster.api_ports.clone();
            let accepted_at = ports
                .iter()
                .position(|p| *p == accepted)
                .expect("a known server");
            // One of the two other servers; some follow api2, which is killed mid-run.
            let other = ports[(accepted_at + 1 + i % 2) % 3];
            followers.push(tokio::spawn(follow(
                ports,
                other,
                self.dead.clone(),
                token.clone(),
                id,
            )));
        }
        followers
    }

    /// The load, through NGINX, with an API server and a worker killed a third in.
    /// Returns how many submissions were acknowledged.
    async fn load_while_an_api_server_and_a_worker_die(&mut self) -> usize {
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, token, run_id) = (
                self.http.clone(),
                self.base.clone(),
                self.token.clone(),
                self.run_id.clone(),
            );
            let (next, done) = (next.clone(), done.clone());
            clients.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ECHO_TASKS {
                        return;
                    }
                    let key = format!("{run_id}-echo-{i}");
                    submit(
                        &http,
                        &base,
                        &token,
                        &key,
                        &json!({"agent": "echo", "input": {"i": i}}),
                    )
                    .await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        while done.load(Ordering::Relaxed) < ECHO_TASKS / 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.dead.lock().unwrap().insert(self.cluster.api_ports[1]);
        self.cluster.proc_mut("api2").kill9();
        self.cluster.proc_mut("worker1").kill9();
        eprintln!(
            "SIGKILLed api2 and worker1 after {} submissions ({:.1?} in)",
            done.load(Ordering::Relaxed),
            self.started.elapsed()
        );
        for c in clients {
            c.await.expect("client");
        }
        eprintln!(
            "all {ECHO_TASKS} submissions acknowledged ({:.1?} in)",
            self.started.elapsed()
        );
        done.load(Ordering::Relaxed)
    }

    /// The final event each follower saw.
    async fn followers_finish(followers: Vec<tokio::task::JoinHandle<Value>>) -> Vec<Value> {
        let mut seen = Vec::new();
        for f in followers {
            seen.push(
                tokio::time::timeout(Duration::from_secs(180), f)
                    .await
                    .expect("follower finished")
                    .expect("follower"),
            );
        }
        seen
    }

    /// Exactly one worker held the cluster duties; if it was the one killed, the other
    /// took them over.
    fn cluster_duties_stay_with_one_worker(&self) {
        let leads = |name: &str| {
            std::fs::read_to_string(self.cluster.dir.path().join(format!("{name}.log")))
                .is_ok_and(|t| t.contains("now runs the cluster duties"))
        };
        if leads("worker1") {
            wait_until(
                "the surviving worker to take the duties over",
                STARTUP,
                || leads("worker2"),
            );
            eprintln!("worker1 held the cluster duties; worker2 took them over");
        } else {
            assert!(leads("worker2"), "one worker runs the cluster duties");
        }
        for api in ["api1", "api2", "api3"] {
            assert!(!leads(api), "API servers never run the cluster duties");
        }
    }

    /// Poison input: valid work (with U+0000 in its content) from every client, beside one
    /// client sending values no server may store. Every valid task is acknowledged (and
    /// finishes once, checked with the rest later); every bad one is a 4xx.
    async fn poison_input_beside_valid_work(&self) {
        let (http, base, token) = (&self.http, &self.base, &self.token);
        let next = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, token, run_id, next) = (
                http.clone(),
                base.clone(),
                token.clone(),
                self.run_id.clone(),
                next.clone(),
            );
            clients.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= POISON_TASKS {
                        return;
                    }
                    // Sent once: no server is being killed now, so any 5xx is a fault.
                    let r = http
                        .post(format!("{base}/api/v1/tasks"))
                        .bearer_auth(&token)
                        .header("idempotency-key", format!("{run_id}-poison-{i}"))
                        .json(&json!({"agent": "echo", "input": {"i": i, "text": "a\u{0}b"}}))
                        .send()
                        .await
                        .expect("the server answers");
                    assert_eq!(
                        r.status(),
                        reqwest::StatusCode::CREATED,
                        "{:?}",
                        r.text().await
                    );
                }
            }));
        }
        let bad = [
            json!({"agent": "echo\u{0}"}),
            json!({"agent": "echo", "idempotency_key": "\u{0}"}),
            json!({"agent": "echo", "delay_ms": u64::MAX}),
            json!({"tasks": [{"agent": "echo"}, {"agent": "\u{0}"}]}),
        ];
        for i in 0..200 {
            let body = &bad[i % bad.len()];
            let path = if body.get("tasks").is_some() {
                "tasks/batch"
            } else {
                "tasks"
            };
            let r = http
                .post(format!("{base}/api/v1/{path}"))
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .expect("the server answers");
            assert!(
                r.status().is_client_error(),
                "{body} answered {}",
                r.status()
            );
        }
        for c in clients {
            c.await.expect("client");
        }
        eprintln!(
            "{POISON_TASKS} valid tasks acknowledged beside 200 bad ones ({:.1?} in)",
            self.started.elapsed()
        );
    }

    /// Redis is gone: the API keeps serving (sessions from the database, events over
    /// PostgreSQL NOTIFY) and says so in /readyz.
    async fn serve_without_redis(&self, survivors: [u16; 2]) {
        let (http, base, token, run_id) = (&self.http, &self.base, &self.token, &self.run_id);
        for port in survivors {
            wait_for_readiness(http, port, "degraded").await;
        }
        let relogin = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "admin@localhost", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(relogin.status().is_success(), "login works without Redis");
        let mut followers = Vec::new();
        for i in 0..DEGRADED_FOLLOWED {
            let key = format!("{run_id}-degraded-follow-{i}");
            let body = json!({"agent": "sleep", "input": {"ms": 1_500}});
            let (id, upstream) = submit(http, base, token, &key, &body).await;
            let accepted = upstream_port(upstream.as_deref()).expect("X-Switchyard-Upstream");
            let other = *survivors.iter().find(|p| **p != accepted).unwrap();
            followers.push(tokio::spawn(follow(
                self.cluster.api_ports.clone(),
                other,
                self.dead.clone(),
                token.clone(),
                id,
            )));
        }
        submit_many(
            http,
            base,
            token,
            &format!("{run_id}-degraded"),
            DEGRADED_TASKS,
            None,
        )
        .await;
        for f in followers {
            let event = tokio::time::timeout(Duration::from_secs(120), f)
                .await
                .expect("follower finished")
                .expect("follower");
            assert_eq!(
                event["status"], "succeeded",
                "final event without Redis: {event}"
            );
        }
        eprintln!(
            "served {DEGRADED_TASKS} tasks and {DEGRADED_FOLLOWED} followers without Redis ({:.1?} in)",
            self.started.elapsed()
        );
    }

    /// Redis returns, empty.
    fn restart_redis(&mut self) {
        let cluster = &mut self.cluster;
        let redis_again = redis_cmd(&self.tools, cluster.dir.path(), cluster.redis_primary, None);
        let redis_again = Proc::spawn("redis-primary-restarted", redis_again, cluster.dir.path());
        cluster.procs.push(redis_again);
    }

    /// Degraded mode ends: sessions outlived the restart, events cross servers again.
    async fn recover_when_redis_returns(&self, survivors: [u16; 2]) {
        let (http, base, token, run_id) = (&self.http, &self.base, &self.token, &self.run_id);
        for port in survivors {
            wait_for_readiness(http, port, "ok").await;
            let me = http
                .get(format!("http://127.0.0.1:{port}/api/v1/auth/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert!(
                me.status().is_success(),
                "the session outlived the Redis restart"
            );
        }
        // Events cross servers again after the recovery.
        for i in 0..2 {
            let key = format!("{run_id}-recovered-follow-{i}");
            let body = json!({"agent": "sleep", "input": {"ms": 1_000}});
            let (id, upstream) = submit(http, base, token, &key, &body).await;
            let accepted = upstream_port(upstream.as_deref()).expect("X-Switchyard-Upstream");
            let other = *survivors.iter().find(|p| **p != accepted).unwrap();
            let event = tokio::time::timeout(
                Duration::from_secs(120),
                follow(
                    self.cluster.api_ports.clone(),
                    other,
                    self.dead.clone(),
                    token.clone(),
                    id,
                ),
            )
            .await
            .expect("follower finished");
            assert_eq!(
                event["status"], "succeeded",
                "final event after recovery: {event}"
            );
        }
        eprintln!(
            "Redis is back; degraded mode ended ({:.1?} in)",
            self.started.elapsed()
        );
    }

    /// PostgreSQL restarts under load: every process reconnects, every acknowledged task
    /// is kept, and clients retrying with their idempotency keys get each task once.
    fn restart_postgres_under_load(&mut self, runtime: &tokio::runtime::Runtime) {
        let done = Arc::new(AtomicUsize::new(0));
        let load = {
            let (http, base, token, done) = (
                self.http.clone(),
                self.base.clone(),
                self.token.clone(),
                done.clone(),
            );
            let prefix = format!("{}-restart", self.run_id);
            runtime.spawn(async move {
                submit_many(&http, &base, &token, &prefix, RESTART_TASKS, Some(done)).await;
            })
        };
        wait_until("submissions before the restart", STARTUP, || {
            done.load(Ordering::Relaxed) >= RESTART_TASKS / 3
        });
        let cluster = &mut self.cluster;
        cluster.proc_mut("postgres-primary").stop();
        let sockets = cluster.dir.path().join("pgsock");
        let primary = postgres_cmd(
            &self.tools,
            cluster.pg_ids,
            &cluster.dir.path().join("pg1"),
            cluster.pg_primary,
            &sockets,
            PRIMARY_SETTINGS,
        );
        let mut primary = Proc::spawn("postgres-primary-restarted", primary, cluster.dir.path());
        primary.gentle = Some("-QUIT");
        cluster.procs.push(primary);
        eprintln!(
            "restarted PostgreSQL after {} submissions ({:.1?} in)",
            done.load(Ordering::Relaxed),
            self.started.elapsed()
        );
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(150), load)
                .await
                .expect("submissions finished after the restart")
                .expect("load");
        });
    }

    /// Every task finished exactly once, checked in the database, and the replica streams
    /// from the primary.
    async fn waits_span_the_cluster(&mut self, survivors: [u16; 2]) {
        let (http, token) = (self.http.clone(), self.token.clone());
        let [worker_api, other_api] = survivors.map(|p| format!("http://127.0.0.1:{p}"));
        let key: Value = http
            .post(format!("{other_api}/api/v1/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "cluster-sdk-worker", "scopes": ["worker"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The Rust SDK's conformance worker, built beside this package's binary.
        let bin = Path::new(env!("CARGO_BIN_EXE_switchyard"))
            .with_file_name("switchyard-conformance-worker");
        assert!(
            bin.exists(),
            "no {}: build it with `cargo build -p switchyard-sdk --bins`",
            bin.display()
        );
        let mut cmd = Command::new(bin);
        cmd.arg(&worker_api)
            .env(
                "SWITCHYARD_API_KEY",
                key["secret"].as_str().expect("secret"),
            )
            .env("WORKER_NAME", "cluster-sdk")
            .env("WORKER_SLOTS", "2");
        let worker = harness::Proc::spawn("sdk-worker", cmd, self.cluster.dir.path());
        self.cluster.procs.push(worker);
        // Its hello registers the agents.
        let deadline = Instant::now() + STARTUP;
        loop {
            let agent = http
                .get(format!("{other_api}/api/v1/agents/conf-parent"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            if agent.status().is_success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the SDK worker never registered its agents"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let submit_wait = |i: usize, input: Value| {
            let (http, token, base) = (http.clone(), token.clone(), other_api.clone());
            let key = format!("{}-wait-{i}", self.run_id);
            async move {
                let body = json!({"agent": "conf-wait", "input": input});
                submit(&http, &base, &token, &key, &body).await.0
            }
        };
        let mut signalled = Vec::new();
        let mut sleepers = Vec::new();
        for i in 0..WAITING_TASKS {
            signalled.push(submit_wait(i, json!({"signal": "go"})).await);
            sleepers.push(submit_wait(WAITING_TASKS + i, json!({"sleep_ms": 300})).await);
        }
        let parent = {
            let body = json!({"agent": "conf-parent", "input": {"messages": ["a", "b", "c"]}});
            let key = format!("{}-wait-parent", self.run_id);
            submit(&http, &other_api, &token, &key, &body).await.0
        };
        let task = |id: String| {
            let (http, token, base) = (http.clone(), token.clone(), other_api.clone());
            async move {
                let t: Value = http
                    .get(format!("{base}/api/v1/tasks/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                t
            }
        };
        let until = |id: String, statuses: &'static [&'static str]| {
            let task = &task;
            async move {
                let deadline = Instant::now() + STARTUP;
                loop {
                    let t = task(id.clone()).await;
                    if statuses.contains(&t["status"].as_str().unwrap_or_default()) {
                        return t;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "task never reached {statuses:?}: {t}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        // Twelve tasks wait for a signal at once on a worker with two slots.
        for id in &signalled {
            until(id.clone(), &["waiting"]).await;
        }
        for (n, id) in signalled.iter().enumerate() {
            let r = http
                .post(format!("{other_api}/api/v1/tasks/{id}/signals/go"))
                .bearer_auth(&token)
                .json(&json!({ "n": n }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
        }
        for (n, id) in signalled.iter().enumerate() {
            let t = until(id.clone(), &["succeeded", "dead"]).await;
            assert_eq!(t["output"]["signal"], json!({ "n": n }), "{t}");
        }
        for id in &sleepers {
            let t = until(id.clone(), &["succeeded", "dead"]).await;
            assert_eq!(t["output"]["slept"], true, "{t}");
            assert_eq!(t["output"]["run"], 2, "resumed once: {t}");
        }
        let t = until(parent, &["succeeded", "dead"]).await;
        assert_eq!(
            t["output"]["children"].as_array().map(Vec::len),
            Some(3),
            "{t}"
        );
        eprintln!("waits across the cluster: {} tasks", 2 * WAITING_TASKS + 4);

        // A stream is kept with its task: a follower that comes after it finished, on the
        // server the worker is not connected to, still receives every part, in order.
        let parts: Vec<String> = (0..200).map(|i| format!("p{i} ")).collect();
        let streamed = {
            let body = json!({"agent": "conf-stream", "input": {"parts": parts}});
            let key = format!("{}-wait-stream", self.run_id);
            submit(&http, &worker_api, &token, &key, &body).await.0
        };
        until(streamed.clone(), &["succeeded"]).await;
        let text = http
            .get(format!(
                "{other_api}/api/v1/tasks/{streamed}/events?since=0"
            ))
            .bearer_auth(&token)
            .timeout(STARTUP)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let received: Vec<String> = text
            .split("\n\n")
            .filter_map(|frame| {
                let data = frame.lines().find_map(|l| l.strip_prefix("data:"))?;
                let event: Value = serde_json::from_str(data.trim()).ok()?;
                (event["kind"] == "partial")
                    .then(|| event["data"].as_str().unwrap_or("").to_owned())
            })
            .collect();
        assert_eq!(received, parts, "every part, once, in order");
    }

    /// Every task this run submitted.
    const EXPECTED: i64 = (ECHO_TASKS
        + FOLLOWED_TASKS
        + POISON_TASKS
        + DEGRADED_TASKS
        + DEGRADED_FOLLOWED
        + 2
        + RESTART_TASKS) as i64;

    /// Each task of the run succeeded once: the number that needed more than one attempt.
    async fn each_task_succeeded_once(db: &mut sqlx::PgConnection, pattern: &str) -> usize {
        // A task's succeeded attempt is described by its row (`attempt`), never recorded in
        // `task_attempts`, which holds every earlier attempt once: a task that succeeded
        // twice, or an attempt recorded twice, breaks one of the two counts.
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT t.idempotency_key, t.status, t.attempt, \
                    (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id AND a.status = 'succeeded'), \
                    (SELECT count(*) FROM task_attempts a WHERE a.task_id = t.id) \
             FROM tasks t WHERE t.idempotency_key LIKE $1",
        )
        .bind(pattern)
        .fetch_all(&mut *db)
        .await
        .unwrap();
        assert_eq!(
            rows.len() as i64,
            Self::EXPECTED,
            "one task per idempotency key"
        );
        let mut by_status: HashMap<String, usize> = HashMap::new();
        let mut retried = 0;
        for (key, status, attempt, recorded_succeeded, recorded) in &rows {
            *by_status.entry(status.clone()).or_default() += 1;
            assert_eq!(status, "succeeded", "{key}");
            assert_eq!(*recorded_succeeded, 0, "{key} succeeded exactly once");
            assert_eq!(
                *recorded,
                attempt - 1,
                "{key}: every attempt before the one that succeeded is recorded once"
            );
            retried += usize::from(*attempt > 1);
        }
        retried
    }

    /// A backup of the cluster's database and files, taken while its servers run (read on
    /// the replica, as `database.replica_url` is set), restored into a database of its own:
    /// the same tasks, each succeeded once, the same files.
    async fn a_restored_deployment_holds_the_same_tasks(&self) {
        use sqlx::Connection;
        let cluster = &self.cluster;
        let archive = cluster.dir.path().join("cluster.backup");
        // As an operator would: the replica first replays everything written so far.
        let mut primary = sqlx::PgConnection::connect(&cluster.primary_url())
            .await
            .unwrap();
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .unwrap();
        let mut replica = sqlx::PgConnection::connect(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            cluster.pg_replica
        ))
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let caught_up: bool =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&written)
                    .fetch_one(&mut replica)
                    .await
                    .unwrap();
            if caught_up {
                break;
            }
            assert!(Instant::now() < deadline, "the replica did not catch up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        succeeds(
            cluster
                .command(&["backup", "--output"])
                .arg(&archive)
                .arg("--data-dir")
                .arg(cluster.dir.path().join("backup-data")),
        );
        let mut admin = sqlx::PgConnection::connect(&cluster.primary_url())
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE restored")
            .execute(&mut admin)
            .await
            .unwrap();
        let restored_url = format!(
            "postgres://postgres@127.0.0.1:{}/restored",
            cluster.pg_primary
        );
        let files = cluster.dir.path().join("restored-files");
        succeeds(
            cluster
                .command(&["restore", "--input"])
                .arg(&archive)
                .arg("--data-dir")
                .arg(cluster.dir.path().join("restored-data"))
                .env("SWITCHYARD__DATABASE__URL", &restored_url)
                .env_remove("SWITCHYARD__DATABASE__REPLICA_URL")
                .env("SWITCHYARD__FILES__URL", &files),
        );
        let mut restored = sqlx::PgConnection::connect(&restored_url).await.unwrap();
        let pattern = format!("{}-%", self.run_id);
        Self::each_task_succeeded_once(&mut restored, &pattern).await;
        let count = "SELECT count(*) FROM files";
        let original: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        let copied: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut restored)
            .await
            .unwrap();
        assert_eq!(
            (copied, original > 0),
            (original, true),
            "the files came along"
        );
    }

    async fn every_task_finished_exactly_once_and_replicated(&self) {
        use sqlx::Connection;
        let cluster = &self.cluster;
        let mut db = sqlx::PgConnection::connect(&cluster.primary_url())
            .await
            .expect("connect to the primary");
        let pattern = format!("{}-%", self.run_id);
        let expected = Self::EXPECTED;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let finished: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tasks WHERE idempotency_key LIKE $1 \
                 AND status IN ('succeeded', 'failed', 'dead', 'cancelled')",
            )
            .bind(&pattern)
            .fetch_one(&mut db)
            .await
            .unwrap();
            if finished == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {finished} of {expected} tasks finished"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let retried = Self::each_task_succeeded_once(&mut db, &pattern).await;
        eprintln!("{expected} tasks succeeded exactly once; {retried} needed a second attempt");

        // The replica streams from the primary.
        let replica_url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            cluster.pg_replica
        );
        let mut replica = sqlx::PgConnection::connect(&replica_url)
            .await
            .expect("replica");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM tasks WHERE idempotency_key LIKE $1")
                    .bind(&pattern)
                    .fetch_one(&mut replica)
                    .await
                    .unwrap();
            if n == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the replica has {n} of {expected} tasks"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut replica)
            .await
            .unwrap();
        assert!(in_recovery, "the replica is a streaming standby");
    }

    /// The Redis replica follows its primary.
    fn redis_replica_follows_its_primary(&self) {
        if let Some(cli) = &self.tools.redis_cli {
            let out = Command::new(cli)
                .args([
                    "-p",
                    &self.cluster.redis_replica.to_string(),
                    "info",
                    "replication",
                ])
                .output()
                .unwrap();
            let info = String::from_utf8_lossy(&out.stdout);
            assert!(info.contains("master_link_status:up"), "{info}");
        }
    }

    /// The surviving API servers are healthy.
    fn survivors_are_ready(&self, survivors: [u16; 2]) {
        for port in survivors {
            assert!(http_ok(port, "/readyz"), "api on :{port} is ready");
        }
    }
}

/// Every follower saw its task succeed, some after moving to another server.
/// Runs a command to its end; it must succeed.
fn succeeds(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn every_follower_saw_success(followers: &[Value]) {
    for event in followers {
        assert_eq!(event["status"], "succeeded", "final event: {event}");
        assert_eq!(event["kind"], "result", "final event: {event}");
    }
    let resumed = followers
        .iter()
        .filter(|e| e["reconnects"].as_u64().unwrap_or(0) > 0)
        .count();
    eprintln!("every follower saw its final event ({resumed} resumed on another server)");
}

/// `deploy/docker-compose.yml` cannot run here (no Docker): at least every setting it
/// passes must be one the binary knows, and it must use the nginx.conf tested above.
#[test]
fn deploy_files_agree_with_the_binary() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let compose = std::fs::read_to_string(deploy.join("docker-compose.yml")).unwrap();
    let generated = switchyard::config::commented_toml().unwrap();
    let mut known = HashSet::new();
    let mut section = String::new();
    for line in generated.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ") {
            known.insert(if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    let mut checked = 0;
    for word in compose.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(var) = word.strip_prefix("SWITCHYARD__") {
            let key = var.to_lowercase().replace("__", ".");
            assert!(
                known.contains(&key),
                "docker-compose.yml sets unknown {word}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "the compose file configures the servers");
    for needle in [
        "./nginx.conf:",
        "\"--role\", \"api\"",
        "\"--role\", \"worker\"",
        "--replicaof",
    ] {
        assert!(compose.contains(needle), "docker-compose.yml has {needle}");
    }
    let dockerfile = std::fs::read_to_string(deploy.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("web/dist"),
        "the image embeds the web UI"
    );
}
