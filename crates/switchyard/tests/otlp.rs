//! OTLP trace export with real processes: the switchyard binary exports its spans to a
//! stand-in collector speaking OTLP/HTTP (protobuf), and a request that carried W3C
//! trace context continues the caller's trace.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use serde_json::{Value, json};

const PASSWORD: &str = "otlp-test-password-123";
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_in_the_callers_trace() {
    // The collector: keeps every export request's body and path.
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((kind, body));
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SWITCHYARD_ADMIN_PASSWORD", PASSWORD)
        .env("SWITCHYARD__TELEMETRY__LOG_FORMAT", "json")
        .env(
            "SWITCHYARD__TELEMETRY__OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .env(
            "SWITCHYARD__TELEMETRY__SERVICE_NAME",
            "switchyard-otlp-test",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the switchyard binary starts");
    let base = format!(
        "http://{}",
        switchyard::testing::announced_addr(child.stdout.take().unwrap(), WAIT)
    );

    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@localhost", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"]
        .as_str()
        .expect("logged in")
        .to_owned();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let task: Value = client
        .post(format!("{base}/api/v1/tasks?wait=30s"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"agent": "echo", "input": {"traced": true}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(task["status"], "succeeded", "{task}");

    // SIGTERM: a graceful stop sends what is still buffered.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < WAIT, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let received = received.lock().unwrap();
    assert!(!received.is_empty(), "the collector received no export");
    assert!(
        received
            .iter()
            .all(|(kind, _)| kind.starts_with("application/x-protobuf")),
        "OTLP/HTTP protobuf"
    );
    let contains = |needle: &[u8]| {
        received
            .iter()
            .any(|(_, body)| body.windows(needle.len()).any(|w| w == needle))
    };
    assert!(
        contains(b"switchyard-otlp-test"),
        "spans carry the configured service.name"
    );
    assert!(
        contains(&trace_bytes),
        "the request span continues the caller's trace {trace_id}"
    );
    assert!(contains(b"request"), "the HTTP request span is exported");
}
