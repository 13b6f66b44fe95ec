//! Server-Sent Event streams of task events, with resumption.
//!
//! A follower first gets what it missed (or, when new, the task's current state), then
//! live events, each with the task's sequence number as the SSE id. Duplicates are
//! dropped by sequence number, so a reconnect with `Last-Event-ID` (or `?since=`) sees
//! every event once and in order, as far back as the server's replay window reaches.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_core::event::{EventBody, TaskEvent};
use switchyard_core::task::Task;
use switchyard_engine::events::{SharedEvent, Subscription};
use switchyard_engine::tasks::snapshot_event;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;

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

fn lagged_event() -> Event {
    Event::default().event("error").data(
        r#"{"type":"error","code":"slow_consumer","message":"this stream fell too far behind and was closed; reconnect with Last-Event-ID to resume"}"#,
    )
}

fn into_sse(rx: mpsc::Receiver<Event>) -> Response {
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What a follower of one task missed since `since`: from the replay window and the
/// stored log lines, plus the current state if newer than both.
pub async fn backlog(state: &AppState, task: &Task, since: Option<u64>) -> Vec<SharedEvent> {
    let Some(since) = since else {
        return vec![Arc::new(snapshot_event(task))];
    };
    if task.seq <= since {
        return Vec::new();
    }
    let mut merged: BTreeMap<u64, SharedEvent> = BTreeMap::new();
    for e in state.engine.hub.recent_for_task(task.id, since) {
        merged.insert(e.seq, e);
    }
    match state.engine.store.task_logs(task.id, since, 10_000).await {
        Ok(lines) => {
            for l in lines {
                merged.entry(l.seq).or_insert_with(|| {
                    Arc::new(TaskEvent {
                        task_id: l.task_id,
                        seq: l.seq,
                        agent: task.agent.clone(),
                        owner_id: task.owner_id,
                        at: l.at,
                        body: EventBody::Log {
                            level: l.level,
                            message: l.message,
                        },
                    })
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read task logs for a resuming follower"),
    }
    merged
        .entry(task.seq)
        .or_insert_with(|| Arc::new(snapshot_event(task)));
    merged.into_values().collect()
}

/// Streams one task's events until its final event.
pub async fn follow_task(
    state: AppState,
    task: Task,
    since: Option<u64>,
    mut sub: Subscription,
) -> Response {
    let (tx, rx) = mpsc::channel(64);
    let backlog = backlog(&state, &task, since).await;
    tokio::spawn(async move {
        let mut last = since.unwrap_or(0);
        for e in backlog {
            if e.seq <= last && since.is_some() {
                continue;
            }
            last = last.max(e.seq);
            let done = e.is_final();
            if tx.send(sse_event(&e, true)).await.is_err() || done {
                return;
            }
        }
        if task.status.is_terminal() && task.seq <= last {
            return;
        }
        loop {
            let e = tokio::select! {
                _ = state.shutdown.cancelled() => return,
                e = sub.rx.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            if e.seq <= last {
                continue;
            }
            last = e.seq;
            if tx.send(sse_event(&e, true)).await.is_err() || e.is_final() {
                return;
            }
        }
        if sub.lagged() {
            let _ = tx.send(lagged_event()).await;
        }
    });
    into_sse(rx)
}

/// Streams every event a subscription matches (an agent's, or all visible tasks').
/// `kinds`, if given, keeps only those event kinds.
pub fn follow_many(
    state: &AppState,
    mut sub: Subscription,
    kinds: Option<Vec<String>>,
) -> Response {
    let (tx, rx) = mpsc::channel(64);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let e = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = sub.rx.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            if kinds
                .as_ref()
                .is_some_and(|k| !k.iter().any(|k| k == e.body.kind()))
            {
                continue;
            }
            if tx.send(sse_event(&e, false)).await.is_err() {
                return;
            }
        }
        if sub.lagged() {
            let _ = tx.send(lagged_event()).await;
        }
    });
    into_sse(rx)
}
