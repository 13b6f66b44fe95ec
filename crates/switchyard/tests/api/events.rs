//! Following tasks live over Server-Sent Events.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

struct Sse {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, path: &str, last_event_id: Option<u64>) -> Sse {
        let mut req = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.admin)
            .timeout(Duration::from_secs(300));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event's data, or `None` when the server closed the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                    .collect();
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an event in time")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }
}

#[tokio::test]
async fn follow_a_task_to_its_result() {
    let app = TestApp::spawn().await;
    let t = app.submit("sleep", json!({"ms": 300})).await;
    let id = t["id"].as_str().unwrap();
    // `since=0`: everything from the start, even what happened before we connected.
    let mut sse = Sse::open(&app, &format!("/api/v1/tasks/{id}/events?since=0"), None).await;
    let mut events = Vec::new();
    while let Some(e) = sse.next().await {
        events.push(e);
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(events[0]["type"], "event");
    assert_eq!(
        (events[0]["seq"].as_u64(), events[0]["status"].as_str()),
        (Some(1), Some("queued"))
    );
    assert_eq!(*kinds.last().unwrap(), "result", "{kinds:?}");
    assert!(
        kinds.contains(&"log"),
        "the sleep agent's log line is streamed: {kinds:?}"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["output"].clone()),
        (Some("succeeded"), json!({"slept_ms": 300}))
    );
    assert!(events.iter().all(|e| e["task_id"] == id));

    // Following a finished task yields its final state and ends.
    let mut sse = Sse::open(&app, &format!("/api/v1/tasks/{id}/events"), None).await;
    let only = sse.next().await.unwrap();
    assert_eq!(only["kind"], "result");
    assert!(sse.next().await.is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_follower_that_reconnects_misses_nothing() {
    let app = TestApp::spawn().await;
    let t = app.submit("fail", json!({"times": 2})).await;
    let id = t["id"].as_str().unwrap();
    // From the start (`since=0`): the cut falls after the first two events whenever the
    // follower connects. Without it, a follower that connects late (a busy machine, the
    // first retry already done) starts at the current state, after some of the retries.
    let mut sse = Sse::open(&app, &format!("/api/v1/tasks/{id}/events?since=0"), None).await;
    let first = sse.next().await.unwrap();
    let second = sse.next().await.unwrap();
    assert_eq!(
        (first["seq"].as_u64(), second["seq"].as_u64()),
        (Some(1), Some(2))
    );
    drop(sse);
    let seen = second["seq"].as_u64().unwrap();
    app.wait_status(id, &["succeeded"]).await;
    let mut sse = Sse::open(&app, &format!("/api/v1/tasks/{id}/events"), Some(seen)).await;
    let mut rest = Vec::new();
    while let Some(e) = sse.next().await {
        rest.push(e);
    }
    let mut all: Vec<u64> = vec![first["seq"].as_u64().unwrap(), seen];
    all.extend(rest.iter().map(|e| e["seq"].as_u64().unwrap()));
    let task = app.task(id).await;
    let final_seq = task["seq"].as_u64().unwrap();
    assert_eq!(*all.last().unwrap(), final_seq);
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {all:?}"
    );
    // Every transition after the cut is delivered: 2 failures (retrying), 2 re-claims, the result.
    let statuses: Vec<&str> = rest.iter().filter_map(|e| e["status"].as_str()).collect();
    assert!(
        statuses.contains(&"retrying") && statuses.last() == Some(&"succeeded"),
        "{statuses:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_event_stream_carries_every_task_of_an_agent() {
    let app = TestApp::spawn().await;
    let mut sse = Sse::open(&app, "/api/v1/events?agent=echo&kinds=result", None).await;
    let mut ids = std::collections::HashSet::new();
    for i in 0..5 {
        ids.insert(
            app.submit("echo", json!({"i": i})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.submit("fail", json!({"times": 0})).await;
    let mut got = std::collections::HashSet::new();
    while got.len() < ids.len() {
        let e = sse.next().await.unwrap();
        assert_eq!(e["kind"], "result");
        assert_eq!(e["agent"], "echo", "other agents are filtered out");
        got.insert(e["task_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, ids);
    let (status, err) = app.get("/api/v1/events?kinds=bogus").await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    app.stop().await;
}

#[tokio::test]
async fn task_logs_are_stored() {
    let app = TestApp::spawn().await;
    let t = app.submit("sleep", json!({"ms": 1})).await;
    let id = t["id"].as_str().unwrap();
    app.wait_status(id, &["succeeded"]).await;
    let (status, logs) = app.get(&format!("/api/v1/tasks/{id}/logs")).await;
    assert_eq!(status, StatusCode::OK);
    let items = logs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["message"], "sleeping 1 ms");
    assert_eq!(items[0]["level"], "info");
    app.stop().await;
}

/// One commit publishes a whole batch's events at once (queued and running for each
/// task of a batch submission). A follower that reads as fast as the server writes must
/// not be dropped as a slow consumer because such a burst is bigger than its buffer.
#[tokio::test]
async fn a_follower_that_keeps_up_survives_a_full_batch() {
    let app = TestApp::spawn().await;
    let mut sse = Sse::open(&app, "/api/v1/events?agent=echo&kinds=status,result", None).await;
    let n = 1_000;
    let tasks: Vec<Value> = (0..n)
        .map(|i| json!({"agent": "echo", "input": {"i": i}}))
        .collect();
    let (status, body) = app
        .post("/api/v1/tasks/batch", json!({ "tasks": tasks }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut succeeded = std::collections::HashSet::new();
    while succeeded.len() < n {
        let e = sse
            .next()
            .await
            .expect("the stream stays open while it keeps up");
        assert_ne!(e["type"], "error", "dropped as a slow consumer: {e}");
        if e["status"] == "succeeded" {
            succeeded.insert(e["task_id"].as_str().unwrap().to_owned());
        }
    }
    app.stop().await;
}
