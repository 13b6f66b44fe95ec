use axum::Json;
use axum::extract::State;
use switchyard_core::TaskId;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::views::TaskTrace;

/// The trace timeline of a task: created → claimed → finished for every attempt.
#[utoipa::path(get, operation_id = "get_task_trace", path = "/api/v1/tasks/{id}/trace", tag = "tasks", params(("id" = TaskId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TaskTrace), (status = 404, body = ErrorBody)))]
pub async fn trace(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<TaskId>,
) -> ApiResult<Json<TaskTrace>> {
    let task = state.engine.tasks().visible(&auth, id).await?;
    Ok(Json(TaskTrace::from(&task)))
}
