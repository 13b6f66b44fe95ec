//! Backup and restore with the real binary: `switchyard backup` beside a running server,
//! `switchyard restore` into the other database backend, and the servers that start on
//! the result (docs/backup.md).

#[path = "common/process.rs"]
mod process;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use process::*;
use serde_json::{Value, json};
use switchyard::testing::PgSchema;
use switchyard_backup::archive::{ArchiveReader, Entry};

const BOB_PASSWORD: &str = "bob-has-a-long-password";

/// Runs `switchyard ARGS` with `env`; its output.
fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the switchyard binary runs")
}

fn ok(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the command failed: {text}");
    text
}

fn failed(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the command succeeded: {text}");
    text
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `switchyard backup` of the deployment in `data` to `archive`.
fn backup(archive: &Path, data: &Path, env: &[(&str, &str)]) -> Output {
    cli(
        &[
            "backup",
            "--output",
            path(archive),
            "--data-dir",
            path(data),
        ],
        env,
    )
}

/// `switchyard restore` of `archive` into the deployment in `data`.
fn restore(archive: &Path, data: &Path, env: &[(&str, &str)]) -> Output {
    cli(
        &[
            "restore",
            "--input",
            path(archive),
            "--data-dir",
            path(data),
        ],
        env,
    )
}

async fn call(
    client: &reqwest::Client,
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut r = client
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method}: {status} {body}");
    body
}

/// What the test puts in the first deployment.
struct Fixture {
    api_key: String,
    file_id: String,
    /// Tasks of an agent no worker runs: still queued when the backup is taken.
    queued: Vec<String>,
}

async fn populate(client: &reqwest::Client, base: &str, token: &str) -> Fixture {
    let post =
        |path: &str, body: Value| call(client, "POST", format!("{base}{path}"), token, Some(body));
    post(
        "/api/v1/users",
        json!({"email": "bob@example.com", "password": BOB_PASSWORD, "role": "operator"}),
    )
    .await;
    let key = post(
        "/api/v1/api-keys",
        json!({"name": "ci", "scopes": ["submit", "read"]}),
    )
    .await;
    post(
        "/api/v1/agents",
        json!({"name": "greeter", "kind": "echo", "input_schema": {"type": "object",
               "properties": {"name": {"type": "string", "default": "world"}}}}),
    )
    .await;
    post(
        "/api/v1/agents",
        json!({"name": "twice", "kind": "fail",
               "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 50}}),
    )
    .await;
    post("/api/v1/agents", json!({"name": "later", "kind": "remote"})).await;
    post(
        "/api/v1/alerts/rules",
        json!({"name": "queue", "kind": "queue_depth", "agent": "echo",
               "threshold": 10, "window_s": 60}),
    )
    .await;
    post(
        "/api/v1/schedules",
        json!({"name": "nightly", "agent": "echo", "cron": "0 3 * * *", "input": {"x": 1}}),
    )
    .await;
    let file: Value = client
        .post(format!("{base}/api/v1/files?name=notes.txt"))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body("backup me, byte for byte")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_id = file["id"].as_str().unwrap().to_owned();
    let mut finishing = Vec::new();
    for i in 0..10 {
        let t = post(
            "/api/v1/tasks",
            json!({"agent": "echo", "input": {"i": i, "text": format!("zebra needle{i}"),
                   "nul": "a\u{0}b", "doc": {"$file": file_id}}}),
        )
        .await;
        finishing.push(t["id"].as_str().unwrap().to_owned());
    }
    for input in [json!({}), json!({"name": "ada"})] {
        let t = post("/api/v1/tasks", json!({"agent": "greeter", "input": input})).await;
        finishing.push(t["id"].as_str().unwrap().to_owned());
    }
    for agent_input in [
        json!({"agent": "twice", "input": {"times": 5}}),
        json!({"agent": "sleep", "input": {"ms": 20}}),
    ] {
        let t = post("/api/v1/tasks", agent_input).await;
        finishing.push(t["id"].as_str().unwrap().to_owned());
    }
    let mut queued = Vec::new();
    for i in 0..3 {
        let t = post(
            "/api/v1/tasks",
            json!({"agent": "later", "input": {"i": i}}),
        )
        .await;
        queued.push(t["id"].as_str().unwrap().to_owned());
    }
    for id in &finishing {
        let start = Instant::now();
        loop {
            let t = task(client, base, token, id).await;
            if matches!(t["status"].as_str(), Some("succeeded" | "dead" | "failed")) {
                break;
            }
            assert!(start.elapsed() < WAIT, "task {id} never finished: {t}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Search is indexed off the submit path: wait for it.
    let start = Instant::now();
    while search(client, base, token).await.len() < 10 {
        assert!(start.elapsed() < WAIT, "the search index never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Fixture {
        api_key: key["secret"].as_str().unwrap().to_owned(),
        file_id,
        queued,
    }
}

async fn search(client: &reqwest::Client, base: &str, token: &str) -> Vec<Value> {
    let found = get_json(
        client,
        format!("{base}/api/v1/tasks?q=zebra&limit=100"),
        token,
    )
    .await;
    found["items"].as_array().cloned().unwrap_or_default()
}

/// Everything the API lists, as a user would compare it.
async fn listings(client: &reqwest::Client, base: &str, token: &str, file_id: &str) -> Value {
    let get = |path: String| get_json(client, format!("{base}{path}"), token);
    let tasks = get("/api/v1/tasks?limit=100".into()).await;
    let mut details = Vec::new();
    for t in tasks["items"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        details.push(json!({
            "task": get(format!("/api/v1/tasks/{id}")).await,
            "logs": get(format!("/api/v1/tasks/{id}/logs")).await,
            "steps": get(format!("/api/v1/tasks/{id}/steps")).await,
        }));
    }
    let content = client
        .get(format!("{base}/api/v1/files/{file_id}/content"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut agents = get("/api/v1/agents".into()).await;
    // Built-in agents are installed again by every server that starts.
    if let Some(items) = agents["items"].as_array_mut() {
        items.retain(|a| a["builtin"] != true);
    }
    let mut rules = get("/api/v1/alerts/rules".into()).await;
    // A rule's state is the server's latest evaluation of it.
    for r in rules["items"].as_array_mut().into_iter().flatten() {
        r.as_object_mut().unwrap().remove("state");
    }
    json!({
        "users": get("/api/v1/users".into()).await,
        "api_keys": get("/api/v1/api-keys".into()).await,
        "agents": agents,
        "alert_rules": rules,
        "schedules": get("/api/v1/schedules".into()).await,
        "files": get("/api/v1/files".into()).await,
        "file_content": content,
        "tasks": tasks,
        "task_details": details,
        "search": search(client, base, token).await,
    })
}

/// Compares two listings, naming the first part that differs.
fn assert_same(before: &Value, after: &Value, what: &str) {
    for (key, value) in before.as_object().unwrap() {
        assert_eq!(
            value, &after[key],
            "{what}: {key} differs after the restore"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_moves_a_deployment_to_postgres_and_back() {
    let client = reqwest::Client::new();
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("first");
    let server = Server::start(&first);
    let token = login(&client, &server.base).await;
    let fixture = populate(&client, &server.base, &token).await;
    let before = listings(&client, &server.base, &token, &fixture.file_id).await;
    assert_eq!(before["task_details"].as_array().unwrap().len(), 17);

    // Taken while the server runs; private to its owner.
    let archive = work.path().join("first.backup");
    ok(backup(&archive, &first, &[]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let verified = ok(cli(&["backup", "verify", path(&archive)], &[]));
    assert!(verified.contains("checksums match"), "{verified}");
    assert!(verified.contains("tasks"), "{verified}");
    server.stop();

    // Into PostgreSQL (or, without one, a second SQLite deployment).
    let schema = PgSchema::create("backup round trip").await;
    let env: Vec<(&str, &str)> = schema
        .iter()
        .map(|s| ("SWITCHYARD__DATABASE__URL", s.url.as_str()))
        .collect();
    let second = work.path().join("second");
    ok(restore(&archive, &second, &env));
    let server = Server::start_with(&second, &env);
    let token = login(&client, &server.base).await;
    let after = listings(&client, &server.base, &token, &fixture.file_id).await;
    assert_same(&before, &after, "restored into the second deployment");
    // Passwords and keys work as they did.
    login_as(&client, &server.base, "bob@example.com", BOB_PASSWORD).await;
    let by_key = client
        .get(format!("{}/api/v1/tasks?limit=1", server.base))
        .bearer_auth(&fixture.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(by_key.status(), 200);

    // A database that holds data is not restored into without --force.
    let refused = failed(restore(&archive, &second, &env));
    assert!(refused.contains("--force"), "{refused}");

    // And back to SQLite, from a backup of the running second deployment (where the
    // key now has a last use).
    let before = listings(&client, &server.base, &token, &fixture.file_id).await;
    let again = work.path().join("second.backup");
    ok(backup(&again, &second, &env));
    server.stop();
    let third = work.path().join("third");
    ok(restore(&again, &third, &[]));
    let server = Server::start(&third);
    let token = login(&client, &server.base).await;
    let after = listings(&client, &server.base, &token, &fixture.file_id).await;
    assert_same(&before, &after, "restored back into SQLite");
    // Queued work runs once a worker can take it.
    call(
        &client,
        "PUT",
        format!("{}/api/v1/agents/later", server.base),
        &token,
        Some(json!({"name": "later", "kind": "echo"})),
    )
    .await;
    for id in &fixture.queued {
        wait_status(&client, &server.base, &token, id, "succeeded").await;
    }
    server.stop();
    if let Some(schema) = schema {
        schema.remove().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_archives_are_refused_and_change_nothing() {
    let client = reqwest::Client::new();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data);
    let token = login(&client, &server.base).await;
    for i in 0..50 {
        call(
            &client,
            "POST",
            format!("{}/api/v1/tasks", server.base),
            &token,
            Some(json!({"agent": "echo", "input": {"i": i}})),
        )
        .await;
    }
    let archive = work.path().join("good.backup");
    ok(backup(&archive, &data, &[]));
    server.stop();
    let bytes = std::fs::read(&archive).unwrap();
    let damaged = work.path().join("damaged.backup");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    std::fs::write(&damaged, &flipped).unwrap();
    let truncated = work.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() - 40]).unwrap();
    let not_one = work.path().join("notes.txt");
    std::fs::write(&not_one, "just text").unwrap();
    for bad in [&damaged, &truncated, &not_one] {
        let said = failed(cli(&["backup", "verify", path(bad)], &[]));
        assert!(said.contains("not a valid backup archive"), "{said}");
    }
    // A restore that fails part-way leaves the database as it was: empty, so a good
    // archive then goes in without --force.
    let target = work.path().join("target");
    for bad in [&damaged, &truncated] {
        failed(restore(bad, &target, &[]));
    }
    ok(restore(&archive, &target, &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_midway_leaves_no_archive() {
    let client = reqwest::Client::new();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data);
    let token = login(&client, &server.base).await;
    // Incompressible bytes, so the backup takes a moment.
    let mut bytes = vec![0u8; 96 << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let r = client
        .post(format!("{}/api/v1/files?name=big.bin", server.base))
        .bearer_auth(&token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let archive = work.path().join("big.backup");
    let partial = work.path().join(".big.backup.partial");
    let mut running = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "backup",
            "--output",
            path(&archive),
            "--data-dir",
            path(&data),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < (1 << 20) {
        assert!(
            running.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed"
        );
        assert!(start.elapsed() < WAIT, "the backup never started writing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.kill().unwrap(); // SIGKILL
    running.wait().unwrap();
    assert!(!archive.exists(), "no archive under the final name");
    // The next backup to the same name replaces the partial file and completes.
    ok(backup(&archive, &data, &[]));
    assert!(!partial.exists());
    let verified = ok(cli(&["backup", "verify", path(&archive)], &[]));
    assert!(
        verified.contains("1 contents, 100663296 bytes"),
        "{verified}"
    );
    server.stop();
}

/// The rows of each table in an archive, by column name.
fn read_archive(path: &Path) -> HashMap<String, Vec<HashMap<String, Value>>> {
    let mut reader = ArchiveReader::open(path).unwrap();
    let mut tables: HashMap<String, Vec<HashMap<String, Value>>> = HashMap::new();
    let mut current = (String::new(), Vec::new());
    while let Some(entry) = reader.next_entry().unwrap() {
        match entry {
            Entry::Table { name, columns } => current = (name, columns),
            Entry::Rows(rows) => {
                let table = tables.entry(current.0.clone()).or_default();
                for row in rows {
                    table.push(current.1.iter().cloned().zip(row).collect());
                }
            }
            _ => {}
        }
    }
    tables
}

/// A backup taken while 20,000 tasks are submitted and run holds each task with exactly
/// the attempts and log lines it had at that moment: nothing half-written.
async fn backup_under_load(env: &[(&str, &str)]) {
    const TOTAL: usize = 20_000;
    let client = reqwest::Client::new();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start_with(&data, env);
    let token = login(&client, &server.base).await;
    call(
        &client,
        "POST",
        format!("{}/api/v1/agents", server.base),
        &token,
        Some(json!({"name": "flaky", "kind": "fail",
                    "retry": {"max_attempts": 3, "base_ms": 5, "cap_ms": 20}})),
    )
    .await;
    let submitted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (client, base, token, submitted) = (
            client.clone(),
            server.base.clone(),
            token.clone(),
            submitted.clone(),
        );
        tokio::spawn(async move {
            while submitted.load(std::sync::atomic::Ordering::Relaxed) < TOTAL {
                // The server may have run every task of the batches before the backup's
                // moment, so each batch also holds one task that waits ten minutes.
                let tasks: Vec<Value> = (0..250)
                    .map(|i| match i % 4 {
                        _ if i == 0 => json!({"agent": "echo", "input": {}, "delay_ms": 600_000}),
                        0 => json!({"agent": "flaky", "input": {"times": 1}}),
                        1 => json!({"agent": "sleep", "input": {"ms": 5}}),
                        _ => json!({"agent": "echo", "input": {"i": i}}),
                    })
                    .collect();
                let url = format!("{base}/api/v1/tasks/batch");
                call(&client, "POST", url, &token, Some(json!({"tasks": tasks}))).await;
                submitted.fetch_add(250, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let start = Instant::now();
    while submitted.load(std::sync::atomic::Ordering::Relaxed) < TOTAL / 3 {
        assert!(start.elapsed() < WAIT, "the load never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let archive = work.path().join("busy.backup");
    ok(backup(&archive, &data, env));
    let during = submitted.load(std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    server.stop();

    let tables = read_archive(&archive);
    let tasks = &tables["tasks"];
    assert!(
        tasks.len() >= TOTAL / 3,
        "only {} tasks in the archive",
        tasks.len()
    );
    assert!(
        tasks.len() < TOTAL,
        "the backup was taken while tasks were submitted ({during} then)"
    );
    let mut attempts: HashMap<&str, Vec<i64>> = HashMap::new();
    for a in &tables["task_attempts"] {
        attempts
            .entry(a["task_id"].as_str().unwrap())
            .or_default()
            .push(a["attempt"].as_i64().unwrap());
    }
    let mut last_log: HashMap<&str, i64> = HashMap::new();
    for l in &tables["task_logs"] {
        let seq = last_log.entry(l["task_id"].as_str().unwrap()).or_default();
        *seq = (*seq).max(l["seq"].as_i64().unwrap());
    }
    let ids: std::collections::HashSet<&str> =
        tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    let (mut finished, mut unfinished) = (0, 0);
    for t in tasks {
        let id = t["id"].as_str().unwrap();
        let started = t["attempt"].as_i64().unwrap();
        let recorded = attempts.get(id).map_or(0, Vec::len) as i64;
        // A running attempt is recorded when it ends; a succeeded one is the task's row.
        let expected = match t["status"].as_str() {
            Some("running" | "succeeded") => started - 1,
            _ => started,
        };
        assert_eq!(
            recorded,
            expected,
            "task {t:?} and its attempts {:?}",
            attempts.get(id)
        );
        assert!(last_log.get(id).copied().unwrap_or(0) <= t["seq"].as_i64().unwrap());
        if t["status"] == "succeeded" {
            finished += 1;
            assert!(!t["output"].is_null(), "a finished task has its output");
        } else {
            unfinished += 1;
        }
    }
    assert!(
        finished > 0 && unfinished > 0,
        "{finished} finished, {unfinished} not"
    );
    assert!(
        attempts.keys().all(|id| ids.contains(id)),
        "no attempt without its task"
    );
    assert!(
        last_log.keys().all(|id| ids.contains(id)),
        "no log line without its task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_one_consistent_moment_on_sqlite() {
    backup_under_load(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_one_consistent_moment_on_postgres() {
    let Some(schema) = PgSchema::create("backup under load test").await else {
        return;
    };
    backup_under_load(&[("SWITCHYARD__DATABASE__URL", schema.url.as_str())]).await;
    schema.remove().await;
}
