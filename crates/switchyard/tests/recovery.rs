//! Crash recovery with real processes: `kill -9` the server mid-work and restart it on
//! the same data directory. Acknowledged tasks survive; interrupted ones run again and
//! complete exactly once.

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::time::{Duration, Instant};

use process::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_task_killed_mid_run_runs_again_and_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    let token = login(&client, &server.base).await;
    let r = client
        .post(format!("{}/api/v1/tasks", server.base))
        .bearer_auth(&token)
        .json(&json!({"agent": "sleep", "input": {"ms": 1500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_status(&client, &server.base, &token, &id, "running").await;
    server.kill9();

    let server = Server::start(dir.path());
    let token = login(&client, &server.base).await;
    let done = wait_status(&client, &server.base, &token, &id, "succeeded").await;
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{done}");
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["error"]["code"], "worker_lost");
    assert_eq!(attempts[1]["status"], "succeeded");
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a["status"] == "succeeded")
            .count(),
        1,
        "completed exactly once"
    );
    assert_eq!(done["output"], json!({"slept_ms": 1500}));
}

#[tokio::test]
async fn acknowledged_tasks_survive_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    let token = login(&client, &server.base).await;
    // Slow tasks, so most are still queued or running when the process dies.
    let tasks: Vec<Value> = (0..300)
        .map(|i| json!({"agent": "sleep", "input": {"ms": 20 + i % 7}}))
        .collect();
    let mut ids = Vec::new();
    let mut handles = Vec::new();
    for chunk in tasks.chunks(50) {
        let (client, base, token) = (client.clone(), server.base.clone(), token.clone());
        let body = json!({"tasks": chunk});
        handles.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/tasks/batch"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let v: Value = r.json().await.unwrap();
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }));
    }
    for h in handles {
        ids.extend(h.await.unwrap());
    }
    assert_eq!(ids.len(), 300);
    server.kill9();

    let server = Server::start(dir.path());
    let token = login(&client, &server.base).await;
    for id in &ids {
        let done = wait_status(&client, &server.base, &token, id, "succeeded").await;
        let succeeded = done["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == "succeeded")
            .count();
        assert_eq!(succeeded, 1, "{done}");
    }
}

fn partial_uploads(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir.join("files/partial")).map_or(0, |d| d.count())
}

/// Starts an upload that sends `sent` bytes and then stalls, and waits until the server
/// has written them to a partial file.
async fn stalled_upload(base: &str, token: &str, data_dir: &Path) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let request = reqwest::Client::new()
        .post(format!("{base}/api/v1/files?name=half.bin"))
        .bearer_auth(token)
        .body(body)
        .send();
    let upload = tokio::spawn(async move {
        let _ = request.await;
    });
    for _ in 0..4 {
        tx.send(Ok(vec![7u8; 1 << 20])).await.unwrap();
    }
    let start = Instant::now();
    while partial_uploads(data_dir) == 0 {
        assert!(start.elapsed() < WAIT, "the upload never reached the disk");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::spawn(async move {
        // Keeps the body open (the upload stalls) until the server is killed.
        let _tx = tx;
        tokio::time::sleep(WAIT).await;
    });
    upload
}

async fn files_listed(client: &reqwest::Client, base: &str, token: &str) -> Value {
    get_json(client, format!("{base}/api/v1/files"), token).await
}

/// kill -9 in the middle of an upload: after the restart no file is listed and the
/// partial bytes are gone (collected at start-up: a single-node server owns every upload).
#[tokio::test]
async fn an_upload_killed_midway_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    let token = login(&client, &server.base).await;
    let upload = stalled_upload(&server.base, &token, dir.path()).await;
    server.kill9();
    upload.abort();
    assert_eq!(
        partial_uploads(dir.path()),
        1,
        "the killed upload's bytes are on disk"
    );
    let server = Server::start(dir.path());
    let token = login(&client, &server.base).await;
    assert_eq!(
        files_listed(&client, &server.base, &token).await["items"],
        json!([])
    );
    assert_eq!(partial_uploads(dir.path()), 0, "collected at start-up");
    server.kill9();
}

/// The same on PostgreSQL, where servers share uploads: the collector removes an upload
/// once it is older than files.upload_timeout_s could allow.
#[tokio::test]
async fn an_upload_killed_midway_is_collected_on_postgres() {
    let Some(schema) = switchyard::testing::PgSchema::create("upload recovery test").await else {
        return;
    };
    let env = [
        ("SWITCHYARD__DATABASE__URL", schema.url.as_str()),
        ("SWITCHYARD__FILES__UPLOAD_TIMEOUT_S", "2"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start_with(dir.path(), &env);
    let token = login(&client, &server.base).await;
    let upload = stalled_upload(&server.base, &token, dir.path()).await;
    server.kill9();
    upload.abort();
    let server = Server::start_with(dir.path(), &env);
    let token = login(&client, &server.base).await;
    let start = Instant::now();
    while partial_uploads(dir.path()) > 0 {
        assert!(
            start.elapsed() < WAIT,
            "the collector never removed the upload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        files_listed(&client, &server.base, &token).await["items"],
        json!([])
    );
    server.kill9();
    let left = schema
        .count(&format!("SELECT count(*) FROM {}.uploads", schema.name()))
        .await;
    assert_eq!(left, 0, "the upload's note is gone too");
    schema.remove().await;
}
