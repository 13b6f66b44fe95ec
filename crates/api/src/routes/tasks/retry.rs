use axum::Json;
use axum::extract::State;
use switchyard_core::TaskId;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::task::Task;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// Replay a dead, failed or cancelled task: back to the queue with a fresh attempt budget.
#[utoipa::path(post, operation_id = "retry_task", path = "/api/v1/tasks/{id}/retry", tag = "tasks", params(("id" = TaskId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody),
        (status = 409, description = "Not in a replayable state", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    auth: Auth<perm::ManageTasks>,
    trail: AuditTrail,
    ApiPath(id): ApiPath<TaskId>,
) -> ApiResult<Json<Task>> {
    let task = state.engine.tasks().retry(&auth, id).await?;
    // Retrying one's own task is routine; someone else's is recorded.
    if task.owner_id != Some(auth.user_id) {
        trail
            .on(
                &auth,
                AuditAction::TaskRetry,
                TargetKind::Task.id(id),
                &Ok(()),
            )
            .await;
    }
    Ok(Json(task))
}
