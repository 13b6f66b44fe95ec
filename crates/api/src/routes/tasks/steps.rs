use axum::Json;
use axum::extract::State;
use switchyard_core::TaskId;
use switchyard_core::step::Step;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::routes::Items;

/// The task's durable steps (`ctx.step` in the SDKs), in the order they were first
/// recorded: a succeeded step with its output, a failed one with the error of its last run.
#[utoipa::path(get, operation_id = "list_task_steps", path = "/api/v1/tasks/{id}/steps", tag = "tasks", params(("id" = TaskId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Items<Step>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn steps(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<TaskId>,
) -> ApiResult<Json<Items<Step>>> {
    let items = state.engine.tasks().steps(&auth, id).await?;
    Ok(Json(Items { items }))
}
