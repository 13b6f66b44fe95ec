//! The WebSocket gateways: `/api/v1/ws` for clients and `/api/v1/workers/ws` for remote
//! workers. Both share this plumbing: one writer task per connection fed by a bounded
//! queue (a peer that cannot keep up is told and disconnected), ping/pong heartbeats,
//! an idle timeout, and a message size limit.

pub mod client;
pub mod worker;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use switchyard_core::auth::Principal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Frames waiting for a connection's writer.
pub(crate) const OUTBOUND_QUEUE: usize = 1_024;
pub(crate) const PING_EVERY: Duration = Duration::from_secs(20);
/// A peer silent for this long (no frames, no pongs) is gone.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unauthenticated connection may wait before sending `auth` / `hello`.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket close codes we use.
pub(crate) mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    /// Application: the peer fell too far behind.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Application: authentication failed.
    pub const UNAUTHORIZED: u16 = 4001;
}

enum Outbound {
    Text(String),
    Close(u16, String),
}

/// The sending half of a connection, cheap to clone into forwarding tasks.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// Fired when the queue overflowed: the session ends with `slow_consumer`.
    pub slow: CancellationToken,
}

impl Outbox {
    fn new(capacity: usize) -> (Outbox, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Outbox {
                tx,
                slow: CancellationToken::new(),
            },
            rx,
        )
    }

    /// Queues a message without waiting. A full queue marks the peer as slow.
    pub fn send<T: Serialize>(&self, message: &T) -> bool {
        match serde_json::to_string(message) {
            Ok(text) => self.send_text(text),
            Err(e) => {
                tracing::error!(error = %e, "could not encode a WebSocket message");
                false
            }
        }
    }

    pub fn send_text(&self, text: String) -> bool {
        match self.tx.try_send(Outbound::Text(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a message, waiting for room (for the last words before closing).
    pub async fn send_wait<T: Serialize>(&self, message: &T) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = self.tx.send(Outbound::Text(text)).await;
        }
    }

    /// Queues a close frame, waiting for room (the connection is ending anyway).
    pub async fn close(&self, code: u16, reason: impl Into<String>) {
        let _ = self.tx.send(Outbound::Close(code, reason.into())).await;
    }
}

/// The limits every WebSocket endpoint applies to its upgrade: message and frame size,
/// and small buffers that grow for big messages (an idle socket costs a few KiB, not
/// tungstenite's default 128 KiB read buffer).
pub(crate) fn with_limits(ws: WebSocketUpgrade, max_message_bytes: usize) -> WebSocketUpgrade {
    ws.max_message_size(max_message_bytes)
        .read_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES)
        .write_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES)
        .max_frame_size(max_message_bytes)
}

/// Splits a socket into an [`Outbox`] of `capacity` frames served by a writer task that
/// also sends pings, and the receiving half.
pub(crate) fn split(
    socket: WebSocket,
    capacity: usize,
) -> (
    Outbox,
    futures::stream::SplitStream<WebSocket>,
    tokio::task::JoinHandle<()>,
) {
    let (sink, stream) = socket.split();
    let (outbox, rx) = Outbox::new(capacity);
    let writer = tokio::spawn(write_loop(sink, rx));
    (outbox, stream, writer)
}

/// Most frames written in one go before the socket is flushed.
const COALESCE_FRAMES: usize = 256;

/// Writes queued frames. Frames already waiting when the writer wakes go out together,
/// with one flush (tungstenite writes whenever its 4 KiB buffer fills), not one write
/// per frame: a burst of assignments to a worker or of events to a client costs a few
/// system calls instead of one each.
async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::Receiver<Outbound>) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let first = tokio::select! {
            next = rx.recv() => next,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let mut next = first;
        let mut written = 0;
        loop {
            match next {
                Some(Outbound::Text(t)) => {
                    if sink.feed(Message::Text(Utf8Bytes::from(t))).await.is_err() {
                        return;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let close = CloseFrame {
                        code,
                        reason: Utf8Bytes::from(reason),
                    };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    let _ = sink.close().await;
                    return;
                }
                None => {
                    let _ = sink.close().await;
                    return;
                }
            }
            written += 1;
            if written == COALESCE_FRAMES {
                break;
            }
            match rx.try_recv() {
                Ok(frame) => next = Some(frame),
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// What arrived from the peer.
pub(crate) enum Incoming {
    Text(String),
    /// A frame we do not accept (binary), already answered with an error.
    Ignored,
    /// The peer left, broke the protocol, or went silent.
    Closed,
}

/// Reads the next meaningful frame, answering protocol noise and enforcing the idle timeout.
pub(crate) async fn next_text(
    stream: &mut futures::stream::SplitStream<WebSocket>,
    outbox: &Outbox,
) -> Incoming {
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await {
            Err(_) => return Incoming::Closed,
            Ok(None) | Ok(Some(Err(_))) => return Incoming::Closed,
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(t) => return Incoming::Text(t.to_string()),
            Message::Binary(_) => {
                outbox.send(&protocol_error(
                    "unsupported_frame",
                    "binary frames are not supported; send JSON text",
                ));
                return Incoming::Ignored;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return Incoming::Closed,
        }
    }
}

#[derive(Serialize)]
struct ProtocolError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    message: &'a str,
}

/// `{"type":"error","code","message"}` — the error shape of both protocols.
pub(crate) fn protocol_error<'a>(code: &'a str, message: &'a str) -> impl Serialize + 'a {
    ProtocolError {
        kind: "error",
        code,
        message,
    }
}

/// Authenticates a WebSocket from its upgrade request: a bearer header or a `?ticket=`.
/// `Ok(None)`: neither was given; the first message must authenticate.
pub(crate) async fn upgrade_principal(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    ticket: Option<&str>,
) -> Result<Option<Principal>, switchyard_core::Error> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| {
                switchyard_core::Error::unauthorized("expected `Authorization: Bearer <token>`")
            })?;
        return state.engine.auth().authenticate(token).await.map(Some);
    }
    match ticket {
        Some(t) => state.engine.auth().redeem_ticket(t).await.map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_marks_the_peer_slow_instead_of_growing() {
        let (outbox, mut rx) = Outbox::new(2);
        assert!(outbox.send_text("a".into()));
        assert!(outbox.send_text("b".into()));
        assert!(!outbox.slow.is_cancelled());
        assert!(
            !outbox.send_text("c".into()),
            "no third message while the peer is behind"
        );
        assert!(
            outbox.slow.is_cancelled(),
            "the session is told to end with slow_consumer"
        );
        assert!(matches!(rx.recv().await, Some(Outbound::Text(t)) if t == "a"));
    }
}
