//! Connections, through raw sockets: bounded in number, and closed when the client
//! stalls — idle between requests, in the middle of a request head or of a body — but
//! never while a request is being handled or a stream (SSE, WebSocket) is open. Bodies
//! announced too large are refused before they are sent.
//!
//! The timeouts are set to a few hundred milliseconds and every bound asserted is many
//! times that, so a slow machine cannot make a test fail that should pass.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::*;

/// The timeouts under test.
const SHORT_MS: u64 = 300;
/// The timeouts that must not be the ones acting.
const LONG_MS: u64 = 60_000;
/// What "closed promptly" means here: far above `SHORT_MS`, far below `LONG_MS`.
const PROMPTLY: Duration = Duration::from_secs(15);

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";

/// One HTTP/1.1 connection, spoken by hand.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A response as read off the socket.
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Raw {
    async fn connect(app: &TestApp) -> Raw {
        let addr = app.base.trim_start_matches("http://");
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more into the buffer; `false` when the server closed the connection.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response (a `100 Continue` counts as one), if it comes within `within`;
    /// `None` if it does not or the connection closes first.
    async fn response(&mut self, within: Duration) -> Option<Response> {
        tokio::time::timeout(within, async {
            loop {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                    let status = head.split(' ').nth(1)?.parse().ok()?;
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while self.buf.len() < end + 4 + length {
                        if !self.fill().await {
                            return None;
                        }
                    }
                    let body = self.buf[end + 4..end + 4 + length].to_vec();
                    self.buf.drain(..end + 4 + length);
                    return Some(Response { status, head, body });
                }
                if !self.fill().await {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    async fn healthz(&mut self) -> u16 {
        self.send(HEALTHZ).await;
        self.response(WAIT).await.expect("a response").status
    }

    /// Whether the server closes the connection within `within` (keeping whatever it
    /// sends before in the buffer), and how long that took.
    async fn closed_within(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut chunk = [0u8; 8192];
        tokio::time::timeout(within, async {
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .ok()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A client without a connection pool: the short idle timeouts here would close pooled
/// connections under it.
fn unpooled() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_client_that_trickles_its_request_head_is_cut_off() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_ms = SHORT_MS;
        c.server.idle_timeout_ms = LONG_MS;
    })
    .await;

    // A new connection that says nothing.
    let mut silent = Raw::connect(&app).await;
    let held = silent.closed_within(PROMPTLY).await;
    assert!(held.is_some(), "a silent new connection is closed");
    eprintln!("silent new connection held {held:?}");

    // Slowloris on a keep-alive connection: one request served, then the next head
    // trickles in a byte every 50 ms and never ends. The idle timeout (a minute) does not
    // apply once the head has begun: the header timeout does.
    let mut slow = Raw::connect(&app).await;
    assert_eq!(slow.healthz().await, 200);
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut = None;
    for byte in head {
        if started.elapsed() > PROMPTLY {
            break;
        }
        if slow.stream.write_all(&[*byte]).await.is_err() {
            cut = Some(started.elapsed());
            break;
        }
        if let Some(after) = slow.closed_within(Duration::from_millis(50)).await {
            cut = Some(started.elapsed().max(after));
            break;
        }
    }
    let cut = cut.expect("a trickled request head is cut off");
    eprintln!("trickled request head cut after {cut:?}");
    assert!(slow.buf.is_empty(), "and answered nothing");

    // Everyone else is served as before.
    let mut fresh = Raw::connect(&app).await;
    assert_eq!(fresh.healthz().await, 200);
    app.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::spawn_with(|c| {
        c.server.idle_timeout_ms = SHORT_MS;
        c.server.header_read_timeout_ms = LONG_MS;
    })
    .await;
    let mut conn = Raw::connect(&app).await;
    // Keep-alive works: two requests back to back on one connection.
    assert_eq!(conn.healthz().await, 200);
    assert_eq!(conn.healthz().await, 200);
    let held = conn.closed_within(PROMPTLY).await;
    assert!(held.is_some(), "an idle keep-alive connection is closed");
    eprintln!("idle keep-alive connection held {held:?}");
    // The harness's own pooled connection went idle before ours: it is closed too.
    let metrics = app.engine().monitoring().metrics.clone();
    let deadline = Instant::now() + PROMPTLY;
    while metrics.http_connections.load(Relaxed) > 0 {
        assert!(Instant::now() < deadline, "idle connections are all closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_the_connection_closed() {
    let app = TestApp::spawn_with(|c| c.server.body_read_timeout_ms = SHORT_MS).await;
    let mut conn = Raw::connect(&app).await;
    let head = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"agent\":",
        app.admin
    );
    let started = Instant::now();
    conn.send(head.as_bytes()).await;
    let response = conn
        .response(PROMPTLY)
        .await
        .expect("a stalled body is answered");
    eprintln!("stalled body answered after {:?}", started.elapsed());
    assert_eq!(response.status, 408, "{}", response.head);
    assert_eq!(error_code(&response.json()), "request_timeout");
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        response.head
    );
    assert!(conn.closed_within(PROMPTLY).await.is_some());
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body() {
    let app = TestApp::spawn_with(|c| c.server.body_limit_bytes = 64 * 1024).await;
    let post = |length: u64, extra: &str| {
        format!(
            "POST /api/v1/tasks HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n",
            app.admin
        )
    };

    // 10^12 bytes announced, none sent: refused at once.
    let mut conn = Raw::connect(&app).await;
    conn.send(post(1_000_000_000_000, "").as_bytes()).await;
    let response = conn
        .response(PROMPTLY)
        .await
        .expect("refused without waiting for the body");
    assert_eq!(response.status, 413, "{}", response.head);
    let body = response.json();
    assert_eq!(error_code(&body), "payload_too_large");
    assert!(
        response.head.contains(&format!(
            "x-request-id: {}",
            body["error"]["request_id"].as_str().unwrap()
        )),
        "the usual error body, with the request id: {}",
        response.head
    );
    assert!(conn.closed_within(PROMPTLY).await.is_some());

    // `Expect: 100-continue` over the limit: 413, never `100 Continue`.
    let mut conn = Raw::connect(&app).await;
    conn.send(post(5_000_000, "expect: 100-continue\r\n").as_bytes())
        .await;
    let response = conn.response(PROMPTLY).await.expect("an answer");
    assert_eq!(response.status, 413, "{}", response.head);

    // Within the limit, the client is asked to go on, and the request succeeds.
    let body = br#"{"agent":"echo","input":{"n":1}}"#;
    let mut conn = Raw::connect(&app).await;
    conn.send(post(body.len() as u64, "expect: 100-continue\r\n").as_bytes())
        .await;
    let response = conn.response(PROMPTLY).await.expect("an answer");
    assert_eq!(response.status, 100, "{}", response.head);
    conn.send(body).await;
    let response = conn.response(WAIT).await.expect("an answer");
    assert_eq!(response.status, 201, "{}", response.head);

    // A chunked body has no length to refuse up front: it is refused as it passes the
    // limit, as before.
    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b' '; 32 * 1024]));
    let response = unpooled()
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn long_polls_and_streams_outlive_the_timeouts() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_ms = SHORT_MS;
        c.server.idle_timeout_ms = SHORT_MS;
        c.server.body_read_timeout_ms = SHORT_MS;
    })
    .await;
    let client = unpooled();
    let outlive = Duration::from_millis(SHORT_MS * 6);

    // An idle connection beside them is closed.
    let mut idle = Raw::connect(&app).await;
    assert_eq!(idle.healthz().await, 200);

    // An SSE stream of every task and a WebSocket, both open longer than the timeouts.
    let sse = client
        .get(app.url("/api/v1/events"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    let mut sse = sse.bytes_stream();
    let url = format!("{}/api/v1/ws", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.admin).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    // A long poll whose handler works for five times the timeouts.
    let started = Instant::now();
    let response = client
        .post(app.url("/api/v1/tasks?wait=30s"))
        .bearer_auth(&app.admin)
        .json(&json!({"agent": "sleep", "input": {"ms": SHORT_MS * 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    assert_eq!(task["status"], "succeeded", "{task}");
    assert!(started.elapsed() >= Duration::from_millis(SHORT_MS * 5));
    tokio::time::sleep(outlive.saturating_sub(started.elapsed())).await;

    assert!(
        idle.closed_within(PROMPTLY).await.is_some(),
        "the idle connection was closed"
    );
    // The SSE stream still delivers: the task's events arrive.
    let id = task["id"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    while !seen.contains(&id) {
        let chunk = tokio::time::timeout(WAIT, sse.next())
            .await
            .expect("the stream is still open")
            .expect("the stream is still open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The WebSocket still answers.
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    let mut pong = false;
    while !pong {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the socket is still open")
            .expect("the socket is still open")
            .unwrap();
        if let Message::Text(text) = message {
            let v: Value = serde_json::from_str(&text).unwrap();
            pong = v["type"] == "pong";
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_connection_bound_holds_new_connections_until_one_closes() {
    const MAX: usize = 8;
    let app = TestApp::spawn_with(|c| {
        c.server.max_connections = Some(MAX);
        c.server.header_read_timeout_ms = LONG_MS;
        c.server.idle_timeout_ms = LONG_MS;
    })
    .await;
    let metrics = app.engine().monitoring().metrics.clone();
    let open = || usize::try_from(metrics.http_connections.load(Relaxed)).unwrap();
    // Fill every slot with idle keep-alive connections (the harness's client may hold one).
    let mut held = Vec::new();
    while open() < MAX {
        let mut conn = Raw::connect(&app).await;
        assert_eq!(conn.healthz().await, 200);
        held.push(conn);
    }
    assert_eq!(open(), MAX);

    // One more connects (the kernel's backlog takes it) but is not served...
    let mut waiting = Raw::connect(&app).await;
    waiting.send(HEALTHZ).await;
    assert!(
        waiting.response(Duration::from_secs(1)).await.is_none(),
        "not served while every slot is taken"
    );
    assert_eq!(open(), MAX, "nor even accepted");
    assert!(metrics.http_connection_limit_reached.load(Relaxed) >= 1);

    // ...until one closes.
    drop(held.pop());
    let response = waiting
        .response(WAIT)
        .await
        .expect("served once a slot frees");
    assert_eq!(response.status, 200);

    drop(held);
    drop(waiting);
    let client = unpooled();
    let response = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = client
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    assert_eq!(sample("switchyard_http_max_connections"), MAX as f64);
    assert!(sample("switchyard_http_connection_limit_reached_total") >= 1.0);
    assert!(sample("switchyard_http_connections") >= 1.0, "this one");
    app.stop().await;
}
