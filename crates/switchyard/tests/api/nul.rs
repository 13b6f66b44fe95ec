//! U+0000 and out-of-range times, on both backends alike (docs/security.md, "Text and
//! U+0000"): content keeps U+0000 exactly; names, keys and filters holding it are a 4xx
//! naming the field; one client's bad value fails no one else's work.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::common::*;

const DATABASE_PREFIX: &str = "sy_api_";

/// A server on a database of its own in `TEST_DATABASE_URL`'s cluster, or `None` (said
/// loudly) without one.
async fn on_postgres() -> Option<TestApp> {
    let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "SKIPPED: TEST_DATABASE_URL not set — the PostgreSQL half of this test did not run"
        );
        return None;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("{DATABASE_PREFIX}{now}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'sy\\_api\\_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for db in old {
        let created = db
            .strip_prefix(DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        if created.is_some_and(|t| t + 600 < now) {
            // Names are made here (prefix, digits, hex), never from input.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').expect("a database URL");
    let db_url = format!("{base}/{name}");
    Some(TestApp::spawn_with(move |c| c.database.url = Some(db_url)).await)
}

/// Runs `check` on SQLite, then on PostgreSQL when it is there.
async fn on_both_backends<F, Fut>(check: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    check(TestApp::spawn().await).await.stop().await;
    if let Some(app) = on_postgres().await {
        check(app).await.stop().await;
    }
}

fn tricky() -> Value {
    json!({"a\u{0}key": "va\u{0}lue", "list": ["\u{0}", "\u{FFFF}0", 1], "plain": "x"})
}

fn assert_names(body: &Value, pointer: &str) {
    let text = body.to_string();
    assert!(text.contains(pointer), "the error names {pointer}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_keeps_nul_and_names_refuse_it() {
    on_both_backends(|app| async move {
        // Content: stored and returned exactly, through the run and its result.
        let (status, task) = app
            .post("/api/v1/tasks?wait=30s", json!({"agent": "echo", "input": tricky()}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        assert_eq!(task["input"], tricky());
        assert_eq!(task["status"], "succeeded", "{task}");
        let id = task["id"].as_str().unwrap();
        let stored = app.task(id).await;
        assert_eq!(stored["input"], tricky());
        assert_eq!(stored["output"], tricky());
        let (status, batch) = app
            .post(
                "/api/v1/tasks/batch",
                json!({"tasks": [{"agent": "echo", "input": tricky()}, {"agent": "echo"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{batch}");
        let first = batch["items"][0]["id"].as_str().unwrap();
        assert_eq!(app.task(first).await["input"], tricky());

        // Names, keys and settings: 422 naming the field.
        for (body, pointer) in [
            (json!({"agent": "ec\u{0}ho"}), "/agent"),
            (json!({"agent": "echo", "idempotency_key": "k\u{0}"}), "/idempotency_key"),
            (json!({"agent": "echo", "input": {}, "x\u{0}": 1}), ""),
        ] {
            let (status, err) = app.post("/api/v1/tasks", body.clone()).await;
            assert!(status.is_client_error(), "{body} → {status} {err}");
            assert_names(&err, pointer);
        }
        let (status, err) = app
            .post(
                "/api/v1/tasks/batch",
                json!({"tasks": [{"agent": "echo"}, {"agent": "e\u{0}"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_names(&err, "/tasks/1/agent");
        for (path, body, pointer) in [
            ("/api/v1/api-keys", json!({"name": "k\u{0}", "scopes": ["read"]}), "/name"),
            (
                "/api/v1/agents",
                json!({"name": "webhook", "kind": "http", "config": {"url": "http://127.0.0.1:9/x\u{0}"}}),
                "/config/url",
            ),
            (
                "/api/v1/users",
                json!({"email": "a\u{0}@example.com", "role": "viewer", "password": "a long enough passphrase 1"}),
                "/email",
            ),
        ] {
            let (status, err) = app.post(path, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {err}");
            assert_names(&err, pointer);
        }

        // Path and query parameters: 400 naming the parameter.
        for (path, name) in [
            ("/api/v1/agents/x%00".to_owned(), "name"),
            ("/api/v1/tasks?agent=%00".to_owned(), "agent"),
            ("/api/v1/metrics/series?metric=tasks_submitted&agent=e%00".to_owned(), "agent"),
            (format!("/api/v1/tasks/{id}/logs?q=%00"), "q"),
        ] {
            let (status, err) = app.get(&path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {err}");
            assert!(err.to_string().contains(&format!("`{name}`")), "{path}: {err}");
        }
        app
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_bounded_and_always_valid_date_times() {
    on_both_backends(|app| async move {
        for body in [
            json!({"agent": "echo", "delay_ms": 9_223_372_036_854_775_807u64}),
            json!({"agent": "echo", "delay_ms": 2 * 366 * 86_400_000u64}),
            json!({"agent": "echo", "run_at": "9999-12-31T23:59:59Z"}),
        ] {
            let (status, err) = app.post("/api/v1/tasks", body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
            assert_names(&err, "max_delay_ms");
        }
        let (status, task) = app
            .post(
                "/api/v1/tasks",
                json!({"agent": "echo", "delay_ms": 86_400_000}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        for field in ["run_at", "created_at", "updated_at"] {
            let text = task[field].as_str().expect("a string");
            assert!(
                switchyard_core::Timestamp::parse_rfc3339(text).is_some(),
                "{field}: {text}"
            );
        }
        app
    })
    .await;
}

/// Sixteen clients submit valid tasks while one sends bad values: every valid task is
/// acknowledged and finishes, every bad one is refused with a 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_bad_values_fail_no_one_elses_work() {
    on_both_backends(|app| async move {
        let app = std::sync::Arc::new(app);
        let mut clients = Vec::new();
        for c in 0..16 {
            let app = app.clone();
            clients.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..40 {
                    let (status, task) = app
                        .post(
                            "/api/v1/tasks",
                            json!({"agent": "echo", "input": {"c": c, "i": i, "nul": "\u{0}"}}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{task}");
                    ids.push(task["id"].as_str().unwrap().to_owned());
                }
                ids
            }));
        }
        let bad = {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    let body = match i % 3 {
                        0 => json!({"agent": "echo\u{0}"}),
                        1 => json!({"agent": "echo", "idempotency_key": "\u{0}"}),
                        _ => json!({"agent": "echo", "delay_ms": u64::MAX}),
                    };
                    let (status, err) = app.post("/api/v1/tasks", body).await;
                    assert!(status.is_client_error(), "{status} {err}");
                }
            })
        };
        let mut ids = Vec::new();
        for c in clients {
            ids.extend(c.await.unwrap());
        }
        bad.await.unwrap();
        assert_eq!(ids.len(), 640);
        for id in &ids {
            let task = app.wait_status(id, &["succeeded"]).await;
            assert_eq!(task["attempts"].as_array().map(Vec::len), Some(1), "{task}");
        }
        // Every client has finished: the app is ours alone again.
        let Ok(app) = std::sync::Arc::try_unwrap(app) else {
            panic!("a client still holds the app")
        };
        app
    })
    .await;
}
