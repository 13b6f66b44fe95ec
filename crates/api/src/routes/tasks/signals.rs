use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::TaskId;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, JsonBody, perm};

/// A signal's payload: any JSON, stored as given (content, like task input).
#[derive(Deserialize)]
#[serde(transparent)]
pub struct SignalPayload(pub Value);

impl JsonBody for SignalPayload {
    const CONTENT: &'static [&'static str] = &[""];
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SignalAccepted {
    pub task_id: TaskId,
    pub name: String,
    /// The task was waiting for this signal and is queued again; `false`: the signal is
    /// kept until the task waits for it.
    pub resumed: bool,
}

/// Send a signal to a task, with any JSON body as its payload. A task waiting for the
/// signal (`ctx.wait_for_signal(name)`) is queued again with the payload as the wait's
/// result; otherwise the signal is kept for its next wait (oldest first, at most 100).
#[utoipa::path(post, operation_id = "signal_task", path = "/api/v1/tasks/{id}/signals/{name}", tag = "tasks",
    params(("id" = TaskId, Path), ("name" = String, Path, description = "The signal's name (1-200 characters)")),
    request_body(content = Object, description = "The payload: any JSON value"),
    security(("bearer" = [])),
    responses((status = 202, body = SignalAccepted),
        (status = 400, description = "A bad name or body", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The task has finished (`task_finished`), or holds 100 signals it has not waited for (`invalid_state`)", body = ErrorBody),
        (status = 413, description = "The payload is over `queue.max_signal_bytes` (`payload_too_large`)", body = ErrorBody)))]
pub async fn signal(
    State(state): State<AppState>,
    auth: Auth<perm::ManageTasks>,
    ApiPath((id, name)): ApiPath<(TaskId, String)>,
    ApiJson(SignalPayload(payload)): ApiJson<SignalPayload>,
) -> ApiResult<(StatusCode, Json<SignalAccepted>)> {
    let outcome = state
        .engine
        .tasks()
        .signal(&auth, id, &name, payload)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignalAccepted {
            task_id: id,
            name,
            resumed: outcome.resumed,
        }),
    ))
}
