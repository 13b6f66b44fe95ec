//! The clients of the scenario: submitting with idempotency keys (retried as a real
//! client would), following a task over SSE across API servers, readiness, and a raw
//! WebSocket upgrade.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

/// Concurrent clients of a load.
pub const CLIENTS: usize = 24;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(CLIENTS * 2)
        .build()
        .unwrap()
}

/// Submits with an idempotency key, retrying (same key) until the server answers: a
/// request cut off by a killed server may or may not have been committed.
pub async fn submit(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let sent = http
            .post(format!("{base}/api/v1/tasks"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let upstream = r
                    .headers()
                    .get("x-switchyard-upstream")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let task: Value = r.json().await.expect("task json");
                let id = task["id"].as_str().expect("task id").to_owned();
                return (id, upstream);
            }
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("submit answered {}: {:?}", r.status(), r.text().await),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "could not submit {key}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows one task over SSE until its final event, reconnecting (with `Last-Event-ID`)
/// to another live API server if its server dies. Returns the final event.
pub async fn follow(
    api_ports: Vec<u16>,
    prefer: u16,
    dead: Arc<Mutex<HashSet<u16>>>,
    token: String,
    task_id: String,
) -> Value {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut last_seq: Option<u64> = None;
    let mut reconnects = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "follower of {task_id} never saw its final event"
        );
        let port = {
            let dead = dead.lock().unwrap();
            if dead.contains(&prefer) {
                *api_ports.iter().find(|p| !dead.contains(p)).unwrap()
            } else {
                prefer
            }
        };
        let mut req = http
            .get(format!(
                "http://127.0.0.1:{port}/api/v1/tasks/{task_id}/events"
            ))
            .bearer_auth(&token);
        if let Some(seq) = last_seq {
            req = req.header("last-event-id", seq.to_string());
        }
        let resp = match req.send().await {
            Ok(r) if r.status().is_success() => r,
            _ => {
                reconnects += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        loop {
            // A stream that goes quiet (its server froze or died) is replaced.
            let chunk = match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                Ok(Some(Ok(c))) => c,
                _ => break,
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let Some(data) = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data:").map(str::trim))
                else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                if let Some(seq) = event["seq"].as_u64() {
                    last_seq = Some(last_seq.map_or(seq, |l| l.max(seq)));
                }
                let terminal = matches!(
                    event["status"].as_str(),
                    Some("succeeded" | "failed" | "dead" | "cancelled")
                );
                if terminal {
                    let mut event = event;
                    event["reconnects"] = json!(reconnects);
                    return event;
                }
            }
        }
        reconnects += 1;
    }
}

/// Submits `n` echo tasks from `CLIENTS` concurrent clients, keys `{prefix}-{i}`.
pub async fn submit_many(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    prefix: &str,
    n: usize,
    done: Option<Arc<AtomicUsize>>,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let done = done.unwrap_or_default();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token, prefix) = (
            http.clone(),
            base.to_owned(),
            token.to_owned(),
            prefix.to_owned(),
        );
        let (next, done) = (next.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let body = json!({"agent": "echo", "input": {"i": i}});
                submit(&http, &base, &token, &format!("{prefix}-{i}"), &body).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for c in clients {
        c.await.expect("client");
    }
}

/// Waits until the server's `/readyz` reports `status`.
pub async fn wait_for_readiness(http: &reqwest::Client, port: u16, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && let Ok(body) = r.json::<Value>().await
        {
            if body["status"] == status {
                return;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("/readyz on :{port} never said {status:?}; last: {last}");
}

pub fn upstream_port(upstream: Option<&str>) -> Option<u16> {
    // `127.0.0.1:PORT`, or a list (`a, b`) when NGINX retried: the last one answered.
    upstream?
        .rsplit(", ")
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

pub fn websocket_upgrade_status(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /api/v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
