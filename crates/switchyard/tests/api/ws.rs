//! The client WebSocket gateway.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::*;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    socket: Socket,
}

impl Client {
    async fn raw(
        app: &TestApp,
        query: &str,
        token: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let url = format!("{}/api/v1/ws{query}", app.base.replace("http://", "ws://"));
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
            .await
            .map(|(socket, _)| Client { socket })
    }

    /// Connected and authenticated with a first `auth` message.
    async fn connect(app: &TestApp, token: &str) -> Client {
        let mut c = Client::raw(app, "", None).await.unwrap();
        c.send(json!({"type": "auth", "token": token})).await;
        assert_eq!(c.recv().await["type"], "authenticated");
        c
    }

    async fn send(&mut self, v: Value) {
        self.socket
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> Value {
        self.try_recv(WAIT).await.expect("a message in time")
    }

    async fn try_recv(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(
                        json!({"type": "closed", "reason": frame.map(|f| f.reason.to_string())}),
                    );
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => return Some(json!({"type": "closed"})),
            }
        }
    }

    async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return m;
            }
            assert_ne!(m["type"], "closed", "closed while waiting for {kind}");
        }
    }

    /// Events of one task until its final one.
    async fn events_until_final(&mut self, task_id: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let m = self.expect("event").await;
            if &m["task_id"] != task_id {
                continue;
            }
            let last = matches!(m["kind"].as_str(), Some("result" | "error"))
                || m["status"] == "cancelled";
            out.push(m);
            if last {
                return out;
            }
        }
    }
}

#[tokio::test]
async fn submit_over_the_socket_then_receive_the_result() {
    let app = TestApp::spawn().await;
    let mut c = Client::connect(&app, &app.admin).await;
    c.send(json!({"type": "submit", "ref": "c-1", "agent": "echo", "input": {"hi": 1}}))
        .await;
    let ack = c.expect("ack").await;
    assert_eq!(ack["ref"], "c-1");
    assert_eq!(ack["task"]["agent"], "echo");
    let events = c.events_until_final(&ack["task"]["id"]).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3], "queued, running, result: {events:?}");
    assert_eq!(events[2]["output"], json!({"hi": 1}));

    // Errors name the ref and leave the connection usable.
    c.send(json!({"type": "submit", "ref": "c-2", "agent": "nope"}))
        .await;
    let err = c.expect("error").await;
    assert_eq!(
        (err["ref"].as_str(), err["code"].as_str()),
        (Some("c-2"), Some("unknown_agent"))
    );
    c.send(json!({"type": "ping"})).await;
    c.expect("pong").await;

    // Cancel over the socket.
    c.send(json!({"type": "submit", "ref": "slow", "agent": "sleep", "input": {"ms": 20000}}))
        .await;
    let ack = c.expect("ack").await;
    let id = ack["task"]["id"].clone();
    app.wait_status(id.as_str().unwrap(), &["running"]).await;
    c.send(json!({"type": "cancel", "task_id": id, "ref": "x"}))
        .await;
    let cancelled = c.events_until_final(&id).await;
    assert_eq!(cancelled.last().unwrap()["status"], "cancelled");
    app.stop().await;
}

#[tokio::test]
async fn a_resumed_subscription_misses_nothing_and_repeats_nothing() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "thrice", "kind": "fail", "retry": {"max_attempts": 5, "base_ms": 50, "cap_ms": 200}})).await;
    let t = app.submit("thrice", json!({"times": 3})).await;
    let id = t["id"].clone();
    let mut c = Client::connect(&app, &app.admin).await;
    c.send(json!({"type": "subscribe", "task_id": id, "since": 0}))
        .await;
    c.expect("subscribed").await;
    let mut seen: Vec<u64> = Vec::new();
    for _ in 0..3 {
        seen.push(c.expect("event").await["seq"].as_u64().unwrap());
    }
    drop(c); // the connection drops mid-stream
    app.wait_status(id.as_str().unwrap(), &["succeeded"]).await;
    let mut c = Client::connect(&app, &app.admin).await;
    c.send(json!({"type": "subscribe", "task_id": id, "since": seen.last().unwrap()}))
        .await;
    c.expect("subscribed").await;
    let rest = c.events_until_final(&id).await;
    seen.extend(rest.iter().map(|e| e["seq"].as_u64().unwrap()));
    let final_seq = app.task(id.as_str().unwrap()).await["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(
        seen,
        (1..=final_seq).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
    app.stop().await;
}

#[tokio::test]
async fn tickets_headers_and_first_message_authenticate() {
    let app = TestApp::spawn().await;
    let (status, ticket) = app.post("/api/v1/auth/ws-ticket", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let t = ticket["ticket"].as_str().unwrap();
    let mut c = Client::raw(&app, &format!("?ticket={t}"), None)
        .await
        .unwrap();
    assert_eq!(c.recv().await["type"], "authenticated");
    match Client::raw(&app, &format!("?ticket={t}"), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401, "tickets work once")
        }
        Ok(_) => panic!("a used ticket must not connect"),
        Err(e) => panic!("{e}"),
    }
    let mut c2 = Client::raw(&app, "", Some(&app.admin)).await.unwrap();
    assert_eq!(c2.recv().await["type"], "authenticated");
    match Client::raw(&app, "", Some("garbage")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        _ => panic!("a bad bearer token must not connect"),
    }
    let mut bad = Client::raw(&app, "", None).await.unwrap();
    bad.send(json!({"type": "auth", "token": "garbage"})).await;
    assert_eq!(bad.recv().await["type"], "error");
    assert_eq!(bad.recv().await["type"], "closed");
    // Tickets also open event streams, where browsers cannot set headers either.
    let (_, ticket) = app.post("/api/v1/auth/ws-ticket", json!({})).await;
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/v1/events?ticket={}",
            ticket["ticket"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(c);
    app.stop().await;
}

#[tokio::test]
async fn broken_frames_get_errors_not_disconnects() {
    let app = TestApp::spawn().await;
    let (_, other) = app.user(switchyard_core::auth::Role::Operator).await;
    let foreign = app.submit("sleep", json!({"ms": 1})).await;
    let mut c = Client::connect(&app, &other).await;
    for (frame, code) in [
        ("{not json", "malformed_message"),
        (r#"{"type":"teleport"}"#, "malformed_message"),
        (r#"{"type":"subscribe"}"#, "invalid_parameter"),
        (
            r#"{"type":"subscribe","agent":"echo","all":true}"#,
            "invalid_parameter",
        ),
        (r#"{"type":"submit","agent":"echo"}"#, "malformed_message"),
    ] {
        c.socket.send(Message::Text(frame.into())).await.unwrap();
        let err = c.expect("error").await;
        assert_eq!(err["code"], code, "{frame} -> {err}");
    }
    c.send(json!({"type": "subscribe", "task_id": foreign["id"]}))
        .await;
    assert_eq!(
        c.expect("error").await["code"],
        "task_not_found",
        "foreign ids look unknown"
    );
    c.socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(c.expect("error").await["code"], "unsupported_frame");
    let huge = "x".repeat(switchyard_protocol::MAX_MESSAGE_BYTES + 10);
    let _ = c.socket.send(Message::Text(huge.into())).await;
    assert_eq!(
        c.recv().await["type"],
        "closed",
        "oversized messages close the connection"
    );
    let mut c = Client::connect(&app, &other).await;
    c.send(json!({"type": "ping"})).await;
    c.expect("pong").await;
    app.stop().await;
}

#[tokio::test]
async fn a_thousand_subscribers_all_get_every_event() {
    let app = TestApp::spawn().await;
    let mut clients = Vec::new();
    for chunk in 0..10 {
        let mut handles = Vec::new();
        for _ in 0..100 {
            let (base, token) = (app.base.clone(), app.admin.clone());
            handles.push(tokio::spawn(async move {
                let url = format!("{}/api/v1/ws", base.replace("http://", "ws://"));
                let mut req = url.into_client_request().unwrap();
                req.headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                let (socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
                let mut c = Client { socket };
                assert_eq!(c.recv().await["type"], "authenticated");
                c.send(json!({"type": "subscribe", "agent": "echo"})).await;
                c.expect("subscribed").await;
                c
            }));
        }
        for h in handles {
            clients.push(h.await.unwrap());
        }
        assert_eq!(clients.len(), (chunk + 1) * 100);
    }
    let mut ids = std::collections::HashSet::new();
    for i in 0..3 {
        ids.insert(
            app.submit("echo", json!({"i": i})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut handles = Vec::new();
    for mut c in clients {
        let ids = ids.clone();
        handles.push(tokio::spawn(async move {
            let mut got = std::collections::HashSet::new();
            while got.len() < ids.len() {
                let e = c.expect("event").await;
                if e["kind"] == "result" {
                    got.insert(e["task_id"].as_str().unwrap().to_owned());
                }
            }
            assert_eq!(got, ids);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    app.stop().await;
}
