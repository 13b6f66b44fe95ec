use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::extract::{Auth, perm};

/// Alert events as they happen, as Server-Sent Events (`event: alert`, the data an alert
/// event). The client WebSocket carries the same with `{"type":"subscribe","alerts":true}`.
#[utoipa::path(get, operation_id = "stream_alert_events", path = "/api/v1/alerts/stream", tag = "monitoring",
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "A stream of alert events")))]
pub async fn stream(State(state): State<AppState>, _auth: Auth<perm::ReadSystem>) -> Response {
    let rx = state.engine.monitoring().subscribe_alerts();
    let shutdown = state.shutdown.clone();
    let events = futures::stream::unfold((rx, shutdown), |(mut rx, shutdown)| async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return None,
                e = rx.recv() => e,
            };
            match next {
                Ok(event) => {
                    let data = serde_json::to_string(&*event).unwrap_or_default();
                    let sse = Event::default().event("alert").data(data);
                    return Some((Ok::<_, Infallible>(sse), (rx, shutdown)));
                }
                // Alerts are rare; a receiver that fell behind skips ahead.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
