use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use switchyard_core::{Error, TaskId};
use switchyard_engine::events::Filter;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, perm};
use crate::sse::follow_task;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Resume after this sequence number (same as the `Last-Event-ID` header).
    pub since: Option<u64>,
    /// A single-use ticket from `POST /api/v1/auth/ws-ticket`, for clients that cannot
    /// send an `Authorization` header (browsers' `EventSource`). Read by the `Auth` extractor.
    #[serde(rename = "ticket")]
    pub _ticket: Option<String>,
}

/// Follow a task live (Server-Sent Events): its current state first (or, resuming, what
/// was missed), then every event until the final one. Each event's SSE id is its
/// sequence number.
#[utoipa::path(get, operation_id = "follow_task_events", path = "/api/v1/tasks/{id}/events", tag = "tasks",
    params(("id" = TaskId, Path), EventParams), security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "A stream of task events"),
        (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<TaskId>,
    ApiQuery(params): ApiQuery<EventParams>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let last_event_id =
        match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                Error::invalid_parameter("Last-Event-ID must be a sequence number")
            })?),
            None => None,
        };
    state.engine.tasks().visible(&auth, id).await?;
    // Subscribe before reading the state, so nothing falls between the two.
    let sub = state
        .engine
        .hub()
        .subscribe(Filter::Task(id), state.config.subscriber_buffer);
    let task = state.engine.tasks().visible(&auth, id).await?;
    Ok(follow_task(state, task, params.since.or(last_event_id), sub).await)
}
