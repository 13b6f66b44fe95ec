use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::TaskId;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::task::{Task, TaskStatus};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// Cancel a task. A waiting task is cancelled at once (`200`); a running one is asked to
/// stop (`202`, `cancel_requested: true`) and is forced after the grace period. Its
/// unfinished child tasks (`parent_id`), and theirs, are cancelled with it.
#[utoipa::path(post, operation_id = "cancel_task", path = "/api/v1/tasks/{id}/cancel", tag = "tasks", params(("id" = TaskId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Task), (status = 202, body = Task), (status = 404, body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Auth<perm::ManageTasks>,
    trail: AuditTrail,
    ApiPath(id): ApiPath<TaskId>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    let task = state.engine.tasks().cancel(&auth, id).await?;
    // Cancelling one's own task is routine; someone else's is recorded.
    if task.owner_id != Some(auth.user_id) {
        trail
            .on(
                &auth,
                AuditAction::TaskCancel,
                TargetKind::Task.id(id),
                &Ok(()),
            )
            .await;
    }
    let status = if task.status == TaskStatus::Cancelled {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(task)))
}
