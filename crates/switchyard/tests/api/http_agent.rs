//! The `http` kind against a real local webhook server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::*;

#[derive(Clone, Default)]
struct Hook {
    calls: Arc<Mutex<HashMap<String, u32>>>,
}

impl Hook {
    fn count(&self, headers: &HeaderMap) -> u32 {
        let task = headers
            .get("x-switchyard-task-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(task).or_default();
        *n += 1;
        *n
    }
}

async fn webhook() -> (String, Hook) {
    let hook = Hook::default();
    let app = axum::Router::new()
        .route(
            "/ok",
            post(|headers: HeaderMap, Json(v): Json<Value>| async move {
                let trace = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                Json(json!({"got": v, "traceparent": trace}))
            }),
        )
        .route(
            "/flaky",
            post(|State(h): State<Hook>, headers: HeaderMap| async move {
                if h.count(&headers) <= 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
                } else {
                    (StatusCode::OK, "\"fine\"").into_response()
                }
            }),
        )
        .route(
            "/missing",
            post(|| async { (StatusCode::NOT_FOUND, "no such thing") }),
        )
        .route(
            "/limited",
            post(|State(h): State<Hook>, headers: HeaderMap| async move {
                if h.count(&headers) == 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "{\"ok\":true}").into_response()
                }
            }),
        )
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hook)
}

async fn http_agent(app: &TestApp, name: &str, url: String) {
    app.register(json!({
        "name": name, "kind": "http", "config": {"url": url},
        "retry": {"max_attempts": 4, "base_ms": 20, "cap_ms": 100}
    }))
    .await;
}

#[tokio::test]
async fn webhooks_succeed_retry_and_fail_by_status() {
    let (base, _hook) = webhook().await;
    let app = TestApp::spawn().await;
    http_agent(&app, "hook-ok", format!("{base}/ok")).await;
    http_agent(&app, "hook-flaky", format!("{base}/flaky")).await;
    http_agent(&app, "hook-missing", format!("{base}/missing")).await;
    http_agent(&app, "hook-limited", format!("{base}/limited")).await;
    http_agent(&app, "hook-down", "http://127.0.0.1:9/nothing".to_owned()).await;

    let t = app.submit("hook-ok", json!({"q": 1})).await;
    let done = app
        .wait_status(t["id"].as_str().unwrap(), &["succeeded", "dead"])
        .await;
    assert_eq!(done["output"]["got"], json!({"q": 1}), "{done}");
    let trace = done["output"]["traceparent"].as_str().unwrap();
    assert!(
        trace.starts_with(&format!("00-{}-", done["trace_id"].as_str().unwrap())),
        "W3C trace context: {trace}"
    );

    let t = app.submit("hook-flaky", json!({})).await;
    let done = app
        .wait_status(t["id"].as_str().unwrap(), &["succeeded", "dead"])
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "5xx is retryable");
    assert_eq!(attempts[0]["error"]["code"], "http_503");
    assert_eq!(done["output"], "fine");

    let t = app.submit("hook-missing", json!({})).await;
    let dead = app
        .wait_status(t["id"].as_str().unwrap(), &["dead", "succeeded"])
        .await;
    assert_eq!(dead["status"], "dead");
    assert_eq!(
        dead["attempts"].as_array().unwrap().len(),
        1,
        "4xx is permanent"
    );
    assert_eq!(dead["error"]["code"], "http_404");
    assert!(
        dead["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such thing")
    );

    let t = app.submit("hook-limited", json!({})).await;
    let done = app
        .wait_status(t["id"].as_str().unwrap(), &["succeeded", "dead"])
        .await;
    let a = done["attempts"].as_array().unwrap();
    assert_eq!(a[0]["error"]["class"], "rate_limited", "{done}");
    assert_eq!(a[0]["error"]["retry_after_ms"], 1000);
    let gap = switchyard_core::Timestamp::parse_rfc3339(a[1]["started_at"].as_str().unwrap())
        .unwrap()
        .since(
            switchyard_core::Timestamp::parse_rfc3339(a[0]["finished_at"].as_str().unwrap())
                .unwrap(),
        );
    assert!(gap >= 950, "Retry-After honoured: waited {gap} ms");

    let t = app.submit("hook-down", json!({})).await;
    let dead = app.wait_status(t["id"].as_str().unwrap(), &["dead"]).await;
    assert_eq!(
        dead["attempts"].as_array().unwrap().len(),
        4,
        "connection errors are retryable"
    );
    assert_eq!(dead["error"]["code"], "network");
    app.stop().await;
}
