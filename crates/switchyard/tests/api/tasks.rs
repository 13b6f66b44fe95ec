use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn submit_get_and_wait() {
    let app = TestApp::spawn().await;
    let task = app.submit("echo", json!({"hello": "world"})).await;
    assert_eq!(task["agent"], "echo");
    // A free built-in slot takes the task at once: it may already be running.
    assert!(
        task["status"] == "queued" || task["status"] == "running",
        "a new task is queued or running: {task}"
    );
    assert_eq!(task["input"], json!({"hello": "world"}));
    for field in [
        "id",
        "agent",
        "status",
        "input",
        "output",
        "error",
        "attempts",
        "created_at",
        "finished_at",
    ] {
        assert!(task.get(field).is_some(), "task carries {field}");
    }
    let done = app
        .wait_status(task["id"].as_str().unwrap(), &["succeeded"])
        .await;
    assert_eq!(done["output"], json!({"hello": "world"}));
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1);
    assert!(done["finished_at"].is_string());

    let (status, waited) = app
        .post(
            "/api/v1/tasks?wait=30s",
            json!({"agent": "echo", "input": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{waited}");
    assert_eq!(waited["status"], "succeeded");
    assert_eq!(waited["output"], json!({"n": 1}));
    // The waited answer is the stored task, whether or not it was read back.
    let (_, stored) = app
        .get(&format!("/api/v1/tasks/{}", waited["id"].as_str().unwrap()))
        .await;
    assert_eq!(waited, stored);

    // The same for a task that failed for good, and for one that retried first.
    for input in [
        json!({"times": 1, "class": "permanent"}),
        json!({"times": 1, "class": "retryable"}),
    ] {
        let (_, waited) = app
            .post(
                "/api/v1/tasks?wait=30s",
                json!({"agent": "fail", "input": input}),
            )
            .await;
        assert!(
            matches!(waited["status"].as_str(), Some("dead" | "succeeded")),
            "{waited}"
        );
        let (_, stored) = app
            .get(&format!("/api/v1/tasks/{}", waited["id"].as_str().unwrap()))
            .await;
        assert_eq!(waited, stored);
    }

    // Still running when the wait ends: 202 with the task as it is.
    let (status, pending) = app
        .post(
            "/api/v1/tasks?wait=200ms",
            json!({"agent": "sleep", "input": {"ms": 3000}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert!(matches!(
        pending["status"].as_str(),
        Some("queued" | "running")
    ));
    app.stop().await;
}

#[tokio::test]
async fn schema_defaults_are_applied() {
    let app = TestApp::spawn().await;
    let t = app.submit("fail", json!({"times": 0})).await;
    assert_eq!(
        t["input"],
        json!({"times": 0, "class": "retryable"}),
        "the fail agent's default class is filled in"
    );
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_task() {
    let app = TestApp::spawn().await;
    let body = json!({"agent": "echo", "input": {"x": 1}, "idempotency_key": "order-7"});
    let (s1, first) = app.post("/api/v1/tasks", body.clone()).await;
    let (s2, second) = app.post("/api/v1/tasks", body).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["id"], second["id"]);
    // The header works too, and keys are per user.
    let (_, other_user) = app.user(switchyard_core::auth::Role::Operator).await;
    let (s3, third) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&other_user),
            Some(json!({"agent": "echo", "idempotency_key": "order-7"})),
        )
        .await;
    assert_eq!(s3, StatusCode::CREATED);
    assert_ne!(third["id"], first["id"]);
    let resp = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&app.admin)
        .header("Idempotency-Key", "hdr-1")
        .json(&json!({"agent": "echo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let again = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&app.admin)
        .header("Idempotency-Key", "hdr-1")
        .json(&json!({"agent": "echo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let tasks: Vec<Value> = (0..50)
        .map(|i| json!({"agent": "echo", "input": {"i": i}}))
        .collect();
    let (status, body) = app
        .post("/api/v1/tasks/batch", json!({"tasks": tasks}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    let ids: HashSet<&str> = items.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 50);
    for t in items {
        app.wait_status(t["id"].as_str().unwrap(), &["succeeded"])
            .await;
    }

    // One bad item: nothing is submitted and every bad item is named.
    let (_, before) = app.get("/api/v1/tasks?limit=500").await;
    let bad = json!({"tasks": [
        {"agent": "echo"},
        {"agent": "sleep", "input": {"ms": "soon"}},
        {"agent": "nope"},
    ]});
    let (status, err) = app.post("/api/v1/tasks/batch", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(error_code(&err), "validation_failed");
    let items = err["error"]["details"]["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| i["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(items[1]["code"], "unknown_agent");
    let (_, after) = app.get("/api/v1/tasks?limit=500").await;
    assert_eq!(
        before["items"].as_array().unwrap().len(),
        after["items"].as_array().unwrap().len()
    );

    let (status, err) = app.post("/api/v1/tasks/batch", json!({"tasks": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    app.stop().await;
}

#[tokio::test]
async fn list_filters_and_cursor_pagination() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let agent = if i % 2 == 0 { "echo" } else { "fail" };
        let input = if agent == "fail" {
            json!({"times": 0})
        } else {
            json!({"i": i})
        };
        ids.push(
            app.submit(agent, input).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids {
        app.wait_status(id, &["succeeded"]).await;
    }
    let (_, page) = app.get("/api/v1/tasks?agent=fail").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (_, page) = app
        .get("/api/v1/tasks?status=succeeded,dead&agent=echo")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let (_, page) = app.get("/api/v1/tasks?status=queued").await;
    assert!(page["items"].as_array().unwrap().is_empty());

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tasks?limit=3&cursor={c}"),
            None => "/api/v1/tasks?limit=3".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, every task once");

    let (status, err) = app.get("/api/v1/tasks?status=finished").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"]["message"].as_str().unwrap().contains("queued"));
    let (status, _) = app.get("/api/v1/tasks?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/v1/tasks?created_after=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn delayed_tasks_wait_for_run_at() {
    let app = TestApp::spawn().await;
    let (status, t) = app
        .post("/api/v1/tasks", json!({"agent": "echo", "delay_ms": 1500}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = t["id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(app.task(id).await["status"], "queued", "not before run_at");
    let done = app.wait_status(id, &["succeeded"]).await;
    let run_at =
        switchyard_core::Timestamp::parse_rfc3339(done["run_at"].as_str().unwrap()).unwrap();
    let started =
        switchyard_core::Timestamp::parse_rfc3339(done["started_at"].as_str().unwrap()).unwrap();
    assert!(
        started >= run_at,
        "started {started} before run_at {run_at}"
    );
    let (status, err) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "echo", "delay_ms": 10, "run_at": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    app.stop().await;
}

#[tokio::test]
async fn priorities_run_highest_first() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "serial", "kind": "sleep", "concurrency": 1}))
        .await;
    // Occupy the only slot, then queue low before high.
    let blocker = app.submit("serial", json!({"ms": 800})).await;
    app.wait_status(blocker["id"].as_str().unwrap(), &["running"])
        .await;
    let mut order = Vec::new();
    for p in [0, 5, 1, 9] {
        let (_, t) = app
            .post(
                "/api/v1/tasks",
                json!({"agent": "serial", "input": {"ms": 1}, "priority": p}),
            )
            .await;
        order.push((p, t["id"].as_str().unwrap().to_owned()));
    }
    let mut started = Vec::new();
    for (p, id) in &order {
        let t = app.wait_status(id, &["succeeded"]).await;
        started.push((t["started_at"].as_str().unwrap().to_owned(), *p));
    }
    started.sort();
    let by_start: Vec<i32> = started.into_iter().map(|(_, p)| p).collect();
    assert_eq!(by_start, vec![9, 5, 1, 0]);
    app.stop().await;
}

#[tokio::test]
async fn concurrency_limit_holds() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "two-at-a-time", "kind": "sleep", "concurrency": 2}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(
            app.submit("two-at-a-time", json!({"ms": 300})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut max_running = 0;
    let start = std::time::Instant::now();
    loop {
        let (_, q) = app.get("/api/v1/queues").await;
        let running = q["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["agent"] == "two-at-a-time")
            .map_or(0, |s| s["running"].as_u64().unwrap());
        max_running = max_running.max(running);
        let (_, done) = app
            .get("/api/v1/tasks?agent=two-at-a-time&status=succeeded")
            .await;
        if done["items"].as_array().unwrap().len() == 6 {
            break;
        }
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(max_running <= 2, "saw {max_running} running at once");
    assert!(max_running >= 1);
    app.stop().await;
}

#[tokio::test]
async fn cached_results_complete_at_once() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "memo", "kind": "echo", "cache_ttl_ms": 60000}))
        .await;
    let first = app.submit("memo", json!({"b": 2, "a": 1})).await;
    let first = app
        .wait_status(first["id"].as_str().unwrap(), &["succeeded"])
        .await;
    assert_eq!(first["cached"], false);
    // Same canonical input (key order differs): answered from the cache.
    let (status, second) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "memo", "input": {"a": 1, "b": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["cached"], true);
    assert_eq!(second["output"], json!({"a": 1, "b": 2}));
    assert!(
        second["attempts"].as_array().unwrap().is_empty(),
        "no agent ran"
    );
    let third = app.submit("memo", json!({"a": 2})).await;
    assert_eq!(third["cached"], false);
    app.stop().await;
}

#[tokio::test]
async fn workers_and_queues_are_listed() {
    let app = TestApp::spawn().await;
    let (status, workers) = app.get("/api/v1/workers").await;
    assert_eq!(status, StatusCode::OK);
    let w = &workers["items"][0];
    assert_eq!(w["kind"], "builtin");
    assert!(w["slots"].as_u64().unwrap() > 0);
    let (status, _) = app.get("/api/v1/queues").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}
