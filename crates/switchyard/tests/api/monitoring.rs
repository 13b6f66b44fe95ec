//! Monitoring through the real server: `/metrics`, stored series, alert rules that fire
//! and resolve with a webhook, live alert events, reports, search and traces.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::auth::{Role, Scope};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

/// Small intervals so the flusher, the alert evaluator, the webhook outbox and the
/// search indexer all run within test time.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.monitoring.rollup_interval_ms = 200;
        c.monitoring.alert_interval_ms = 200;
        c.monitoring.search_interval_ms = 200;
        c.monitoring.webhook_backoff_ms = 100;
        c.monitoring.webhook_timeout_ms = 5_000;
    })
    .await
}

/// Polls `check` until it returns `Some`, failing after the harness's generous wait.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_echo(app: &TestApp, n: usize, word: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let t = app
            .submit("echo", json!({"text": format!("{word} {i}")}))
            .await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        app.wait_status(id, &["succeeded"]).await;
    }
    ids
}

async fn get_text(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, resp.text().await.unwrap())
}

// ---------------------------------------------------------------------------------------
// A strict checker for the Prometheus text exposition format (0.0.4).

type Labels = BTreeMap<String, String>;

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() {
            break;
        }
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if !valid {
            return Err(format!("bad label name {name:?}"));
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("label {name} needs =\"value\""));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some('"') => break,
                Some('\n') | None => return Err("unterminated label value".into()),
                Some(c) => value.push(c),
            }
        }
        if labels.insert(name.clone(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => return Err(format!("unexpected {c:?} after a label")),
        }
    }
    Ok(labels)
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Checks the whole exposition; returns the samples. Panics naming the first problem.
fn check_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut seen_series = HashSet::new();
    let mut closed_families = HashSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(helps.insert(name.clone()), "HELP twice for {name} ({at})");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type ({at})"
            );
            assert!(
                name.starts_with("switchyard_"),
                "{name} is not switchyard_*"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice for {name}"
            );
            assert!(helps.contains(name), "HELP before TYPE for {name}");
            if let Some((prev, _)) = current.take() {
                closed_families.insert(prev);
            }
            assert!(!closed_families.contains(name), "family {name} split");
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line ({at})"
        );
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value ({at})"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed {{ ({at})"));
                (
                    name,
                    parse_labels(inner).unwrap_or_else(|e| panic!("{e} ({at})")),
                )
            }
            None => (series, BTreeMap::new()),
        };
        let value = parse_value(value).unwrap_or_else(|e| panic!("{e} ({at})"));
        let (family, kind) = current
            .clone()
            .unwrap_or_else(|| panic!("sample before TYPE ({at})"));
        let belongs = match kind.as_str() {
            "histogram" => [
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ]
            .contains(&name.to_owned()),
            _ => name == family,
        };
        assert!(belongs, "sample {name} outside its family {family} ({at})");
        if kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} must end in _total"
            );
            assert!(value >= 0.0, "negative counter ({at})");
        }
        if name.ends_with("_bucket") && kind == "histogram" {
            assert!(labels.contains_key("le"), "bucket without le ({at})");
        }
        assert!(
            seen_series.insert(format!("{name}{labels:?}")),
            "duplicate series ({at})"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    // Histograms: buckets in increasing `le`, cumulative, ending in +Inf = _count.
    let mut groups: HashMap<(String, Labels), Vec<(f64, f64)>> = HashMap::new();
    for s in &samples {
        if let Some(family) = s.name.strip_suffix("_bucket")
            && types.get(family).map(String::as_str) == Some("histogram")
        {
            let mut rest = s.labels.clone();
            let le = parse_value(&rest.remove("le").unwrap()).unwrap();
            groups
                .entry((family.to_owned(), rest))
                .or_default()
                .push((le, s.value));
        }
    }
    for ((family, labels), buckets) in &groups {
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{family}{labels:?}: buckets out of order or not cumulative: {buckets:?}"
        );
        let last = buckets.last().unwrap();
        assert!(
            last.0.is_infinite(),
            "{family}{labels:?} has no +Inf bucket"
        );
        let count = samples
            .iter()
            .find(|s| s.name == format!("{family}_count") && &s.labels == labels)
            .unwrap_or_else(|| panic!("{family}{labels:?} has no _count"));
        assert_eq!(
            count.value, last.1,
            "{family}{labels:?}: +Inf bucket ≠ _count"
        );
        assert!(
            samples
                .iter()
                .any(|s| s.name == format!("{family}_sum") && &s.labels == labels),
            "{family}{labels:?} has no _sum"
        );
    }
    samples
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .reduce(|a, b| a + b)
}

#[tokio::test]
async fn metrics_endpoint_is_guarded_and_valid() {
    let app = spawn().await;
    run_echo(&app, 3, "metrics").await;
    // Requests to a route with an id: counted under the template, never the raw path.
    let (status, _) = app
        .get("/api/v1/tasks/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, _) = get_text(&app, "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let submit_key = app.api_key(&[Scope::Submit]).await;
    let (status, _, _) = get_text(&app, "/metrics", Some(&submit_key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let read_key = app.api_key(&[Scope::Read]).await;
    let (status, ctype, text) = get_text(&app, "/metrics", Some(&read_key)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let samples = check_exposition(&text);
    let echo = [("agent", "echo")];
    assert!(value_of(&samples, "switchyard_tasks_submitted_total", &echo).unwrap() >= 3.0);
    assert!(value_of(&samples, "switchyard_tasks_started_total", &echo).unwrap() >= 3.0);
    let names: HashSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "switchyard_http_requests_total",
        "switchyard_websocket_connections",
        "switchyard_workers_connected",
        "switchyard_db_pool_connections",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "{expected} missing from:\n{text}"
        );
    }
    assert!(
        names.iter().any(|n| n.ends_with("_bucket")),
        "latency histograms present"
    );
    let routes: HashSet<&str> = samples
        .iter()
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    assert!(routes.contains("/api/v1/tasks/{id}"), "{routes:?}");
    assert!(
        routes.iter().all(|r| !r.contains("00000000")),
        "raw paths never become labels: {routes:?}"
    );
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
    {
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn public_metrics_need_no_credential() {
    let app = TestApp::spawn_with(|c| c.monitoring.public_metrics = true).await;
    let (status, _, text) = get_text(&app, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    check_exposition(&text);
    app.stop().await;
}

#[tokio::test]
async fn series_come_from_stored_rollups() {
    let app = spawn().await;
    run_echo(&app, 4, "series").await;
    let total = |body: &Value| -> f64 {
        body["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["v"].as_f64())
            .sum()
    };
    let body = eventually("submitted tasks in the stored series", || async {
        let (status, body) = app
            .get("/api/v1/metrics/series?metric=tasks_submitted&agent=echo")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (total(&body) >= 4.0).then_some(body)
    })
    .await;
    assert_eq!(body["step"], 60);
    assert_eq!(body["unit"], "tasks");
    assert!(body["points"].as_array().unwrap().len() >= 60);
    eventually("finished tasks in the stored series", || async {
        let (_, body) = app
            .get("/api/v1/metrics/series?metric=tasks_finished&agent=echo&step=300")
            .await;
        (total(&body) >= 4.0).then_some(())
    })
    .await;
    // Percentiles from the stored histograms: a value in some step, in milliseconds.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (status, body) = app
        .get(&format!(
            "/api/v1/metrics/series?metric=latency_p95&agent=echo&from={}&to={}&step=120",
            now - 600,
            now + 60
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unit"], "ms");
    let p95: Vec<f64> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["v"].as_f64())
        .collect();
    assert!(!p95.is_empty() && p95.iter().all(|v| *v >= 0.0), "{body}");

    let (status, body) = app.get("/api/v1/metrics/series/names").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for n in [
        "tasks_submitted",
        "tasks_finished",
        "tasks_failed",
        "queue_depth",
        "latency_p50",
        "latency_p95",
        "latency_p99",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    // Bad input: clear 400s.
    for (query, needle) in [
        ("metric=nope", "latency_p95"),
        ("metric=tasks_submitted&step=10", "step"),
        ("metric=tasks_submitted&from=yesterday", "from"),
        ("metric=tasks_submitted&from=2000&to=1000", "after"),
        ("metric=tasks_submitted&bogus=1", "bogus"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/metrics/series?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    let (_, viewer) = app.user(Role::Viewer).await;
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/metrics/series?metric=tasks_submitted",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

/// A Slack-style webhook receiver that fails its first call with a 500.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<u32>>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Receiver>, Json(v): Json<Value>| async move {
                    let first = {
                        let mut calls = r.calls.lock().unwrap();
                        *calls += 1;
                        *calls == 1
                    };
                    if first {
                        return AxumStatus::INTERNAL_SERVER_ERROR;
                    }
                    r.received.lock().unwrap().push(v);
                    AxumStatus::OK
                },
            ),
        )
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), r)
}

#[tokio::test]
async fn alert_rules_are_managed_by_admins() {
    let app = spawn().await;
    let rule = json!({"name": "queue", "kind": "queue_depth", "agent": "echo",
                      "threshold": 10, "window_s": 60});
    let (status, created) = app.post("/api/v1/alerts/rules", rule.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["state"]["status"], "ok");
    assert_eq!(created["for_s"], 0);

    let (status, body) = app.get(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "queue");
    let mut changed = rule.clone();
    changed["threshold"] = json!(20);
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&app.admin),
            Some(changed.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["threshold"], 20.0);

    // Validation: every problem listed; unknown kinds and fields refused.
    let (status, body) = app
        .post(
            "/api/v1/alerts/rules",
            json!({"name": "", "kind": "no_worker", "threshold": -1, "window_s": 0,
                   "webhook_url": "ftp://x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "validation_failed");
    assert!(
        body["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    let (status, body) = app
        .post(
            "/api/v1/alerts/rules",
            json!({"name": "x", "kind": "cpu", "threshold": 1, "window_s": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .post("/api/v1/alerts/rules", json!({"name": "x", "kind": "queue_depth", "threshold": 1, "window_s": 1, "colour": "red"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Viewers and operators see rules but cannot manage them.
    for role in [Role::Viewer, Role::Operator] {
        let (_, token) = app.user(role).await;
        let (status, body) = app
            .call("GET", "/api/v1/alerts/rules", Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        let (status, body) = app
            .call(
                "POST",
                "/api/v1/alerts/rules",
                Some(&token),
                Some(rule.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = app
            .call(
                "PUT",
                &format!("/api/v1/alerts/rules/{id}"),
                Some(&token),
                Some(changed.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app
            .call(
                "DELETE",
                &format!("/api/v1/alerts/rules/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/alerts/rules/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "alert_rule_not_found");
    let (status, _) = app.get("/api/v1/alerts/rules/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/v1/alerts/events?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn failure_rate_alert_fires_notifies_and_resolves() {
    let app = spawn().await;
    let (url, hook) = receiver().await;

    // Live alerts on the client WebSocket.
    let ws_url = format!("{}/api/v1/ws", app.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let ws_send = |v: Value| Message::Text(v.to_string().into());
    ws.send(ws_send(json!({"type": "auth", "token": app.admin})))
        .await
        .unwrap();
    ws.send(ws_send(json!({"type": "subscribe", "alerts": true})))
        .await
        .unwrap();

    let (status, rule) = app
        .post(
            "/api/v1/alerts/rules",
            json!({"name": "fail agent failing", "kind": "failure_rate", "agent": "fail",
                   "threshold": 0.5, "window_s": 600, "webhook_url": url}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let rule_id = rule["id"].as_str().unwrap().to_owned();

    // Two tasks that fail for good: the failure rate is 100 %.
    for _ in 0..2 {
        let t = app
            .submit("fail", json!({"times": 99, "class": "permanent"}))
            .await;
        app.wait_status(t["id"].as_str().unwrap(), &["dead"]).await;
    }
    let firing = eventually("the rule to fire", || async {
        let (_, body) = app
            .get(&format!("/api/v1/alerts/events?rule_id={rule_id}"))
            .await;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["state"] == "firing")
            .cloned()
    })
    .await;
    assert_eq!(firing["agent"], "fail");
    assert_eq!(firing["value"], 1.0);
    assert!(
        firing.get("webhook_url").is_none(),
        "the URL is never shown"
    );

    // The webhook: a first 500, then delivered on retry with a Slack-compatible body.
    let body = eventually("the firing notification", || async {
        hook.received.lock().unwrap().first().cloned()
    })
    .await;
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("FIRING: fail agent failing"),
        "{body}"
    );
    assert_eq!(body["alert"]["state"], "firing");
    let sent = eventually("the notification recorded as sent", || async {
        let (_, body) = app
            .get(&format!("/api/v1/alerts/events?rule_id={rule_id}"))
            .await;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["state"] == "firing" && e["notify_status"] == "sent")
            .cloned()
    })
    .await;
    assert_eq!(sent["notify_attempts"], 2, "{sent}");

    // Pushed live to the WebSocket subscriber.
    let alert = tokio::time::timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "alert" {
                    return v;
                }
            }
        }
        panic!("the WebSocket closed");
    })
    .await
    .expect("an alert message on the WebSocket");
    assert_eq!(alert["event"]["rule_id"], rule_id.as_str());
    assert_eq!(alert["event"]["state"], "firing");

    // Failures stop: successes bring the rate under the threshold and the rule resolves.
    for _ in 0..4 {
        let t = app.submit("fail", json!({"times": 0})).await;
        app.wait_status(t["id"].as_str().unwrap(), &["succeeded"])
            .await;
    }
    eventually("the rule to resolve", || async {
        let (_, body) = app
            .get(&format!("/api/v1/alerts/events?rule_id={rule_id}"))
            .await;
        let items = body["items"].as_array().unwrap().clone();
        (items.first()?["state"] == "resolved").then_some(())
    })
    .await;
    let resolved = eventually("the resolved notification", || async {
        hook.received
            .lock()
            .unwrap()
            .iter()
            .find(|b| b["alert"]["state"] == "resolved")
            .cloned()
    })
    .await;
    assert!(resolved["text"].as_str().unwrap().contains("RESOLVED"));
    let (_, rule) = app.get(&format!("/api/v1/alerts/rules/{rule_id}")).await;
    assert_eq!(rule["state"]["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn reports_match_the_tasks_run() {
    let app = spawn().await;
    run_echo(&app, 3, "report").await;
    let t = app
        .submit("fail", json!({"times": 99, "class": "permanent"}))
        .await;
    app.wait_status(t["id"].as_str().unwrap(), &["dead"]).await;

    let (status, report) = app.get("/api/v1/reports/agents").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let agent = |name: &str| {
        report["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    let echo = agent("echo");
    assert_eq!(echo["tasks"], 3);
    assert_eq!(echo["succeeded"], 3);
    assert_eq!(echo["success_rate"], 1.0);
    assert!(echo["latency_p50_ms"].as_f64().is_some());
    let fail = agent("fail");
    assert_eq!(fail["tasks"], 1);
    assert_eq!(fail["dead"], 1);
    assert_eq!(fail["success_rate"], 0.0);

    let (status, ctype, csv) = get_text(&app, "/api/v1/reports/agents.csv", Some(&app.admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<HashMap<&str, &str>> = lines
        .map(|l| header.iter().copied().zip(l.split(',')).collect())
        .collect();
    let echo_row = rows.iter().find(|r| r["agent"] == "echo").unwrap();
    assert_eq!(echo_row["tasks"], "3");
    assert_eq!(echo_row["succeeded"], "3");
    let fail_row = rows.iter().find(|r| r["agent"] == "fail").unwrap();
    assert_eq!(fail_row["dead"], "1");

    // A period with nothing in it, and bad periods.
    let (status, body) = app
        .get("/api/v1/reports/agents?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["agents"].as_array().unwrap().is_empty());
    let (status, _) = app.get("/api/v1/reports/agents?from=1000&to=10").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/v1/reports/agents?from=0").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "longer than the longest report"
    );
    app.stop().await;
}

#[tokio::test]
async fn full_text_search_finds_a_task_by_a_word_of_its_input() {
    let app = spawn().await;
    let ids = run_echo(&app, 1, "zebracorn").await;
    run_echo(&app, 2, "other").await;
    let items = eventually("the indexer to index the task", || async {
        let (status, body) = app.get("/api/v1/tasks?q=ZebraCorn").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap().clone();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ids[0].as_str());
    // Log filters: a bad level is a 400, a good one answers.
    let (status, body) = app
        .get(&format!("/api/v1/tasks/{}/logs?level=loud", ids[0]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .get(&format!("/api/v1/tasks/{}/logs?level=warn&q=x", ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn traceparent_is_carried_and_the_timeline_shown() {
    let app = spawn().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&app.admin)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"agent": "fail", "input": {"times": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let task: Value = resp.json().await.unwrap();
    assert_eq!(task["trace_id"], trace);
    let id = task["id"].as_str().unwrap();
    app.wait_status(id, &["succeeded"]).await;

    let (status, timeline) = app.get(&format!("/api/v1/tasks/{id}/trace")).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(timeline["trace_id"], trace);
    let attempts = timeline["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        2,
        "one failed attempt, one retry: {timeline}"
    );
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["error_code"], "simulated_failure");
    assert_eq!(attempts[1]["status"], "succeeded");
    assert_eq!(attempts[0]["queued_at"], timeline["created_at"]);
    assert_eq!(attempts[1]["queued_at"], attempts[0]["finished_at"]);
    assert!(timeline["total_ms"].as_u64().is_some());

    // Without a traceparent a trace id is generated.
    let t = app.submit("echo", json!({})).await;
    assert_eq!(t["trace_id"].as_str().unwrap().len(), 32);
    let (status, _) = app
        .get("/api/v1/tasks/00000000-0000-0000-0000-000000000000/trace")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}
