//! Following one task's events over Server-Sent Events
//! (`GET /api/v1/tasks/{id}/events`), resuming after the last sequence number seen when
//! the connection drops.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::Method;

use super::{Client, ClientError, TaskEvent};

/// The server sends a keep-alive comment every 15 s: this long without a byte means the
/// connection is dead even if the socket has not noticed.
const IDLE: Duration = Duration::from_secs(60);
/// Reconnections in a row that deliver no event before following gives up.
const MAX_FAILURES: u32 = 6;
/// An event larger than this is not one the server sends (its messages are capped far
/// below): the stream is broken.
const MAX_FRAME_BYTES: usize = 16 << 20;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The live events of one task, from [`Client::follow`]: call [`next`](Self::next) until
/// it answers `None` (after the task's final event) or an error.
pub struct TaskEvents {
    client: Client,
    task_id: String,
    /// The last sequence number delivered (or the `since` asked for).
    last_seq: Option<u64>,
    body: Option<Body>,
    buf: Vec<u8>,
    done: bool,
    failures: u32,
    /// Whether a connection was ever established: a server unreachable from the start
    /// is an error at once, one that went away is waited for.
    connected: bool,
}

/// One Server-Sent Event.
#[derive(Debug, Default, PartialEq)]
struct Frame {
    event: Option<String>,
    data: String,
}

fn parse_frame(text: &str) -> Frame {
    let mut frame = Frame::default();
    let mut lines = 0;
    for line in text.lines() {
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => frame.event = Some(value.to_owned()),
            "data" => {
                if lines > 0 {
                    frame.data.push('\n');
                }
                frame.data.push_str(value);
                lines += 1;
            }
            // `id`, `retry` and comments (keep-alives): the seq is in the data too.
            _ => {}
        }
    }
    frame
}

impl TaskEvents {
    pub(super) fn new(client: Client, task_id: String, since: Option<u64>) -> Self {
        TaskEvents {
            client,
            task_id,
            last_seq: since,
            body: None,
            buf: Vec::new(),
            done: false,
            failures: 0,
            connected: false,
        }
    }

    /// The sequence number of the last event delivered.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The next event; `None` once the task's final event was delivered. A dropped
    /// connection is resumed after the last event seen, so no event is lost or repeated;
    /// an error ends the stream.
    pub async fn next(&mut self) -> Option<Result<TaskEvent, ClientError>> {
        if self.done {
            return None;
        }
        match self.advance().await {
            Ok(event) => {
                if event.is_final() {
                    self.done = true;
                    self.body = None;
                }
                Some(Ok(event))
            }
            Err(e) => {
                self.done = true;
                self.body = None;
                Some(Err(e))
            }
        }
    }

    /// The events as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<TaskEvent, ClientError>> + Send {
        futures::stream::unfold(self, |mut events| async move {
            events.next().await.map(|item| (item, events))
        })
    }

    async fn advance(&mut self) -> Result<TaskEvent, ClientError> {
        loop {
            if let Some(event) = self.take_buffered()? {
                return Ok(event);
            }
            let Some(body) = self.body.as_mut() else {
                self.connect().await?;
                continue;
            };
            match tokio::time::timeout(IDLE, body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    // Carriage returns only ever end lines here (JSON escapes its own).
                    self.buf.extend(chunk.iter().filter(|b| **b != b'\r'));
                    if self.buf.len() > MAX_FRAME_BYTES {
                        return Err(ClientError::Protocol(format!(
                            "an event of task {} is larger than {MAX_FRAME_BYTES} bytes",
                            self.task_id
                        )));
                    }
                }
                // The connection ended or broke before the final event: resume.
                Ok(None) | Ok(Some(Err(_))) | Err(_) => self.drop_connection(),
            }
        }
    }

    fn drop_connection(&mut self) {
        self.body = None;
        self.buf.clear();
    }

    /// The next complete event in the buffer, if any.
    fn take_buffered(&mut self) -> Result<Option<TaskEvent>, ClientError> {
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
            let frame = parse_frame(&String::from_utf8_lossy(&raw));
            if frame.event.as_deref() == Some("error") {
                // `slow_consumer`: the server dropped this follower; reconnecting with the
                // last seq replays what was missed.
                self.drop_connection();
                return Ok(None);
            }
            if frame.data.is_empty() {
                continue;
            }
            let event: TaskEvent = serde_json::from_str(&frame.data).map_err(|e| {
                ClientError::Protocol(format!("an event of task {}: {e}", self.task_id))
            })?;
            if self.last_seq.is_some_and(|last| event.seq <= last) {
                continue;
            }
            self.last_seq = Some(event.seq);
            self.failures = 0;
            return Ok(Some(event));
        }
        Ok(None)
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        let mut url = self.client.endpoint(&["tasks", &self.task_id, "events"]);
        if let Some(since) = self.last_seq {
            url.query_pairs_mut()
                .append_pair("since", &since.to_string());
        }
        match self.client.send(Method::GET, url, None, None).await {
            Ok(response) => {
                self.connected = true;
                self.failures += 1;
                if self.failures > MAX_FAILURES {
                    return Err(ClientError::Protocol(format!(
                        "the event stream of task {} keeps ending before the task does",
                        self.task_id
                    )));
                }
                if self.failures > 1 {
                    backoff(self.failures).await;
                }
                self.body = Some(Box::pin(response.bytes_stream()));
                Ok(())
            }
            Err(e @ ClientError::Unreachable { .. }) => {
                self.failures += 1;
                if !self.connected || self.failures > MAX_FAILURES {
                    return Err(e);
                }
                backoff(self.failures).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// 200 ms, doubling, at most 5 s.
async fn backoff(failures: u32) {
    let ms = 200u64.saturating_mul(1 << failures.min(5)).min(5_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_parsed() {
        let f = parse_frame("id: 3\ndata: {\"a\":1}\n\n");
        assert_eq!(f.data, "{\"a\":1}");
        assert_eq!(f.event, None);
        let f = parse_frame("event: error\ndata:{\"code\":\"slow_consumer\"}\n\n");
        assert_eq!(f.event.as_deref(), Some("error"));
        assert_eq!(f.data, "{\"code\":\"slow_consumer\"}");
        let f = parse_frame("data: one\ndata: two\n\n");
        assert_eq!(f.data, "one\ntwo");
        assert_eq!(parse_frame(":\n\n"), Frame::default());
    }
}
