//! Server-Sent Event streams of task events (see [`crate::follow`] for the semantics).
//! Each event's SSE id is its task sequence number.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_core::event::TaskEvent;
use switchyard_core::task::Task;
use switchyard_engine::events::Subscription;
use switchyard_monitoring::metrics::{GaugeGuard, OwnedGaugeGuard};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::follow::{End, EventSink, TaskFollower, pump_many};

/// The wire form of an event, shared by SSE and the WebSocket gateway.
#[derive(Serialize)]
pub struct WireEvent<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub event: &'a TaskEvent,
}

pub fn wire_json(event: &TaskEvent) -> String {
    serde_json::to_string(&WireEvent {
        kind: "event",
        event,
    })
    .unwrap_or_default()
}

fn sse_event(event: &TaskEvent, with_id: bool) -> Event {
    let e = Event::default().data(wire_json(event));
    if with_id {
        e.id(event.seq.to_string())
    } else {
        e
    }
}

pub const SLOW_CONSUMER_MESSAGE: &str =
    "this stream fell too far behind and was closed; reconnect (with the last seq seen) to resume";

fn lagged_event() -> Event {
    Event::default().event("error").data(
        serde_json::json!({"type": "error", "code": "slow_consumer", "message": SLOW_CONSUMER_MESSAGE}).to_string(),
    )
}

/// A many-task stream's events, without ids: seqs number one task's events, not these.
struct SseSink {
    tx: mpsc::Sender<Event>,
}

impl EventSink for SseSink {
    async fn emit(&mut self, event: &TaskEvent) -> bool {
        self.tx.send(sse_event(event, false)).await.is_ok()
    }
}

fn into_sse(rx: mpsc::Receiver<Event>) -> Response {
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Streams one task's events until its final event. The response body reads the
/// follower itself: no task or channel between the subscription and the connection.
pub async fn follow_task(
    state: AppState,
    task: Task,
    since: Option<u64>,
    sub: Subscription,
) -> Response {
    let backlog = state.engine.tasks().backlog(&task, since).await;
    let open = OwnedGaugeGuard::new(state.engine.monitoring().metrics.clone(), |m| {
        &m.sse_streams
    });
    let follower = TaskFollower::new(state, task.id, backlog, since, sub);
    let events = futures::stream::unfold(Some((follower, open)), |followed| async move {
        let (mut follower, open) = followed?;
        match follower.next().await {
            Ok(e) => Some((sse_event(&e, true), Some((follower, open)))),
            Err(End::Lagged) => Some((lagged_event(), None)),
            Err(_) => None,
        }
    });
    Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Streams every event a subscription matches (an agent's, or all visible tasks', of
/// the kinds it asked for).
pub fn follow_many(
    state: &AppState,
    mut sub: Subscription,
    missed: Vec<switchyard_engine::events::SharedEvent>,
) -> Response {
    let (tx, rx) = mpsc::channel(64);
    let shutdown = state.shutdown.clone();
    let metrics = state.engine.monitoring().metrics.clone();
    tokio::spawn(async move {
        let _open = GaugeGuard::new(&metrics.sse_streams);
        let mut sink = SseSink { tx };
        if pump_many(missed, &mut sub, &shutdown, &mut sink).await == End::Lagged {
            let _ = sink.tx.send(lagged_event()).await;
        }
    });
    into_sse(rx)
}
