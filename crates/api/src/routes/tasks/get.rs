use axum::Json;
use axum::extract::State;
use switchyard_core::TaskId;
use switchyard_core::task::Task;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// A task with its attempts.
#[utoipa::path(get, operation_id = "get_task", path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = TaskId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<TaskId>,
) -> ApiResult<Json<Task>> {
    Ok(Json(state.engine.tasks().visible(&auth, id).await?))
}
