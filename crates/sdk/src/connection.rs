//! One worker's life: connect, say hello, run assignments, heartbeat, reconnect with
//! backoff, drain on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use switchyard_protocol::worker::{ServerMessage, WorkerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::step::{PendingSteps, StepMemory};
use crate::{SdkError, TaskContext, TaskError, WorkerBuilder};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const OUTBOUND_QUEUE: usize = 1_024;

enum End {
    /// Shut down on request, everything finished.
    Stopped,
    /// The connection broke; try again.
    Lost(String),
}

fn ws_url(base: &str) -> Result<String, SdkError> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        return Err(SdkError::InvalidUrl(base.to_owned()));
    };
    Ok(format!("{rest}/api/v1/workers/ws"))
}

pub(crate) async fn run(
    builder: WorkerBuilder,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), SdkError> {
    let url = ws_url(&builder.url)?;
    let builder = Arc::new(builder);
    let stop = CancellationToken::new();
    let watcher = {
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
            futures::future::pending::<()>().await;
        }
    };
    let reconnecting = async {
        let mut backoff = Duration::from_millis(100);
        loop {
            let why = match session(&builder, &url, &stop).await {
                Ok(End::Stopped) => return Ok(()),
                Ok(End::Lost(why)) => {
                    // The session was up: start the backoff over.
                    backoff = Duration::from_millis(100);
                    why
                }
                Err(SdkError::Connection(why)) => why,
                Err(fatal) => return Err(fatal),
            };
            if stop.is_cancelled() {
                return Ok(());
            }
            // Full jitter, like the server's retries.
            let pause = backoff
                .mul_f64(rand::random::<f64>())
                .max(Duration::from_millis(50));
            tracing::warn!(reason = %why, retry_in_ms = pause.as_millis() as u64, "worker disconnected; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return Ok(()),
            }
            backoff = (backoff * 2).min(builder.max_backoff);
        }
    };
    tokio::select! {
        r = reconnecting => r,
        _ = watcher => Ok(()),
    }
}

struct Running {
    attempt: u32,
    cancel: CancellationToken,
}

async fn session(
    builder: &Arc<WorkerBuilder>,
    url: &str,
    stop: &CancellationToken,
) -> Result<End, SdkError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| SdkError::InvalidUrl(format!("{url}: {e}")))?;
    let auth = HeaderValue::from_str(&format!("Bearer {}", builder.api_key)).map_err(|_| {
        SdkError::Refused {
            code: "invalid_key".into(),
            message: "the API key is not valid header text".into(),
        }
    })?;
    request.headers_mut().insert("authorization", auth);
    // tungstenite zero-fills its whole read buffer before every read: at its default
    // 128 KiB that memset was 12 % of this worker's CPU in a remote batch run (perf).
    // The buffer grows for big messages, as on the server's side.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES);
    // Nagle off (`disable_nagle`): results and events are small frames that must not
    // wait for the server's delayed ACK.
    let (socket, _) =
        match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
            Ok(ok) => ok,
            Err(tungstenite::Error::Http(response))
                if matches!(response.status().as_u16(), 401 | 403) =>
            {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                return Err(SdkError::Refused {
                    code: response.status().to_string(),
                    message: body,
                });
            }
            Err(e) => return Err(SdkError::Connection(e.to_string())),
        };
    let (mut sink, mut stream) = socket.split();
    let hello = WorkerMessage::Hello {
        name: builder.name.clone(),
        agents: builder.agents.clone(),
        slots: builder.slots,
        version: Some(concat!("switchyard-sdk-rust/", env!("CARGO_PKG_VERSION")).to_owned()),
    };
    send(&mut sink, &hello).await?;
    let heartbeat_ms =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_message(&mut stream)).await {
            Ok(Some(ServerMessage::Welcome {
                heartbeat_ms,
                worker_id,
                ..
            })) => {
                tracing::info!(%worker_id, name = %builder.name, "connected");
                heartbeat_ms
            }
            // A server-side hiccup (database restarting, overload) is worth another try;
            // a refusal of this worker's credentials or declarations is not.
            Ok(Some(ServerMessage::Error { code, message }))
                if matches!(code.as_str(), "internal" | "unavailable" | "rate_limited") =>
            {
                return Err(SdkError::Connection(format!("{code}: {message}")));
            }
            Ok(Some(ServerMessage::Error { code, message })) => {
                return Err(SdkError::Refused { code, message });
            }
            Ok(_) => return Err(SdkError::Connection("no welcome from the server".into())),
            Err(_) => {
                return Err(SdkError::Connection(
                    "the server did not answer hello in time".into(),
                ));
            }
        };

    let (out_tx, mut out_rx) = mpsc::channel::<WorkerMessage>(OUTBOUND_QUEUE);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(uuid::Uuid, u32)>();
    let mut running: HashMap<uuid::Uuid, Running> = HashMap::new();
    let pending_steps = PendingSteps::default();
    let mut heartbeat = tokio::time::interval(Duration::from_millis((heartbeat_ms / 2).max(100)));
    let mut draining = false;
    // The server's `draining` answer: until it arrives, an assignment may be on its way
    // (sent before the server read `drain`), and leaving would fail it as `worker_lost`.
    let mut drained = false;
    let end = loop {
        tokio::select! {
            _ = stop.cancelled(), if !draining => {
                draining = true;
                send(&mut sink, &WorkerMessage::Drain {}).await?;
            }
            Some(msg) = out_rx.recv() => send_queued(&mut sink, msg, &mut out_rx).await?,
            Some((id, attempt)) = done_rx.recv() => {
                // A later attempt of the same task (a wait's next run) may be running already.
                if running.get(&id).is_some_and(|r| r.attempt == attempt) {
                    running.remove(&id);
                }
                if drained && running.is_empty() {
                    // Flush the last results before leaving.
                    while let Ok(msg) = out_rx.try_recv() {
                        send(&mut sink, &msg).await?;
                    }
                    break End::Stopped;
                }
            }
            _ = heartbeat.tick() => send(&mut sink, &WorkerMessage::Heartbeat {}).await?,
            msg = next_message(&mut stream) => match msg {
                Some(ServerMessage::Assign { task_id, attempt, agent, input, timeout_ms, traceparent, parent_id, steps, files, upload_url }) => {
                    let cancel = CancellationToken::new();
                    running.insert(task_id, Running { attempt, cancel: cancel.clone() });
                    let ctx = TaskContext {
                        task_id, attempt, agent, traceparent, parent_id, cancel,
                        out: out_tx.clone(),
                        steps: StepMemory::new(steps),
                        pending: pending_steps.clone(),
                        suspend: CancellationToken::new(),
                        calls: Default::default(),
                        files: crate::files::AttemptFiles {
                            http: builder.http.clone(),
                            base: crate::files::http_base(&builder.url),
                            files,
                            upload_url,
                        },
                    };
                    spawn_attempt(builder, ctx, input, Duration::from_millis(timeout_ms), done_tx.clone());
                }
                Some(ServerMessage::Cancel { task_id, attempt }) => {
                    if let Some(r) = running.get(&task_id).filter(|r| r.attempt == attempt) {
                        r.cancel.cancel();
                    }
                }
                Some(answer @ (ServerMessage::StepRecorded { .. }
                    | ServerMessage::WaitResult { .. }
                    | ServerMessage::Spawned { .. })) => pending_steps.answer(answer),
                Some(ServerMessage::Ack { task_id, attempt, accepted: false }) => {
                    tracing::warn!(%task_id, attempt, "the server rejected a result: the attempt had lost its lease");
                }
                Some(ServerMessage::Draining {}) => {
                    drained = true;
                    if running.is_empty() {
                        while let Ok(msg) = out_rx.try_recv() {
                            send(&mut sink, &msg).await?;
                        }
                        break End::Stopped;
                    }
                }
                Some(ServerMessage::Error { code, message }) => tracing::warn!(%code, %message, "server error"),
                Some(_) => {}
                None => break End::Lost("the connection closed".into()),
            },
        }
    };
    // Whatever still runs belongs to a lost connection; the server has re-queued it.
    for r in running.values() {
        r.cancel.cancel();
    }
    pending_steps.clear();
    if matches!(end, End::Stopped) {
        let _ = sink.close().await;
    }
    Ok(end)
}

fn spawn_attempt(
    builder: &Arc<WorkerBuilder>,
    ctx: TaskContext,
    input: serde_json::Value,
    timeout: Duration,
    done: mpsc::UnboundedSender<(uuid::Uuid, u32)>,
) {
    let handler = builder.handlers.get(&ctx.agent).cloned();
    tokio::spawn(async move {
        let (task_id, attempt) = (ctx.task_id, ctx.attempt);
        let cancel = ctx.cancel.clone();
        let suspend = ctx.suspend.clone();
        let out = ctx.out.clone();
        let message = match handler {
            None => Some(failure(
                task_id,
                attempt,
                TaskError::permanent(format!("this worker does not serve {:?}", ctx.agent)),
            )),
            Some(handler) => {
                let work = AssertUnwindSafe(handler(input, ctx)).catch_unwind();
                // Cancellation first: a handler that honours it returns at the same moment,
                // and its error must not stand in for `cancelled` (the server would retry it).
                // A wait that ends the run drops the handler: the server has ended the
                // attempt, so nothing is reported.
                tokio::select! {
                    biased;
                    _ = suspend.cancelled() => None,
                    _ = cancel.cancelled() => Some(WorkerMessage::Cancelled { task_id, attempt }),
                    r = tokio::time::timeout(timeout, work) => Some(match r {
                        Ok(Ok(Ok(output))) => WorkerMessage::Result { task_id, attempt, output },
                        Ok(Ok(Err(error))) => failure(task_id, attempt, error),
                        Ok(Err(_panic)) => failure(task_id, attempt, TaskError::retryable("the handler panicked").with_code("panic")),
                        Err(_) => failure(
                            task_id,
                            attempt,
                            TaskError::retryable(format!("the attempt did not finish within {} ms", timeout.as_millis()))
                                .with_code("timeout"),
                        ),
                    }),
                }
            }
        };
        if let Some(message) = message {
            let _ = out.send(message).await;
        }
        let _ = done.send((task_id, attempt));
    });
}

fn failure(task_id: uuid::Uuid, attempt: u32, e: TaskError) -> WorkerMessage {
    WorkerMessage::Error {
        task_id,
        attempt,
        class: e.class,
        message: e.message,
        code: e.code,
        retry_after_ms: e.retry_after_ms,
    }
}

/// Encodes `msg` and queues it on the socket, without flushing.
async fn feed<S>(sink: &mut S, msg: &WorkerMessage) -> Result<(), SdkError>
where
    S: futures::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let text = serde_json::to_string(msg).map_err(|e| SdkError::Connection(e.to_string()))?;
    sink.feed(Message::Text(text.into()))
        .await
        .map_err(|e| SdkError::Connection(e.to_string()))
}

async fn flush<S>(sink: &mut S) -> Result<(), SdkError>
where
    S: futures::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    sink.flush()
        .await
        .map_err(|e| SdkError::Connection(e.to_string()))
}

async fn send<S>(sink: &mut S, msg: &WorkerMessage) -> Result<(), SdkError>
where
    S: futures::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    feed(sink, msg).await?;
    flush(sink).await
}

/// Most queued messages written before the socket is flushed.
const COALESCE_MESSAGES: usize = 256;

/// Writes `first` and whatever else is already queued with one flush, not one write per
/// message: results finishing together leave in a few system calls.
async fn send_queued<S>(
    sink: &mut S,
    first: WorkerMessage,
    queued: &mut mpsc::Receiver<WorkerMessage>,
) -> Result<(), SdkError>
where
    S: futures::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let mut msg = first;
    let mut written = 0;
    loop {
        feed(sink, &msg).await?;
        written += 1;
        if written == COALESCE_MESSAGES {
            break;
        }
        match queued.try_recv() {
            Ok(next) => msg = next,
            Err(_) => break,
        }
    }
    flush(sink).await
}

/// The next protocol message; `None` when the connection is gone.
async fn next_message<S>(stream: &mut S) -> Option<ServerMessage>
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => match serde_json::from_str(&t) {
                Ok(m) => return Some(m),
                Err(e) => tracing::warn!(error = %e, "unreadable message from the server"),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            ws_url("http://h:8080/").unwrap(),
            "ws://h:8080/api/v1/workers/ws"
        );
        assert_eq!(ws_url("https://h").unwrap(), "wss://h/api/v1/workers/ws");
        assert!(ws_url("h:8080").is_err());
    }

    /// Queued messages leave in order, at most `COALESCE_MESSAGES` per flush, and none is
    /// dropped at the boundary between two flushes.
    #[tokio::test]
    async fn queued_messages_are_written_in_order_and_none_is_lost() {
        let (frames_tx, mut frames) = futures::channel::mpsc::unbounded::<Message>();
        let mut sink = frames_tx.sink_map_err(|_| tungstenite::Error::ConnectionClosed);
        let log = |n: usize| WorkerMessage::Log {
            task_id: uuid::Uuid::nil(),
            attempt: 1,
            level: switchyard_protocol::worker::Level::Info,
            message: n.to_string(),
        };
        let total = 2 * COALESCE_MESSAGES + 89;
        let (tx, mut queued) = mpsc::channel(total);
        for n in 1..total {
            tx.try_send(log(n)).unwrap();
        }
        let mut first = log(0);
        let mut flushes = 0;
        loop {
            send_queued(&mut sink, first, &mut queued).await.unwrap();
            flushes += 1;
            match queued.try_recv() {
                Ok(next) => first = next,
                Err(_) => break,
            }
        }
        assert_eq!(flushes, 3);
        drop(sink);
        let mut seen = Vec::new();
        while let Some(Message::Text(t)) = frames.next().await {
            let m: serde_json::Value = serde_json::from_str(&t).unwrap();
            seen.push(m["message"].as_str().unwrap().parse::<usize>().unwrap());
        }
        assert_eq!(seen, (0..total).collect::<Vec<_>>());
    }
}
