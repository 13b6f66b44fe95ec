use axum::Json;
use axum::extract::State;
use switchyard_core::TaskId;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::routes::Items;
use crate::views::FileView;

/// The files the task's agent uploaded (`ctx.upload` in the SDKs), newest first.
#[utoipa::path(get, operation_id = "list_task_artifacts", path = "/api/v1/tasks/{id}/artifacts", tag = "tasks", params(("id" = TaskId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Items<FileView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn artifacts(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<TaskId>,
) -> ApiResult<Json<Items<FileView>>> {
    let files = state.engine.files().artifacts(&auth, id).await?;
    Ok(Json(Items {
        items: files.into_iter().map(Into::into).collect(),
    }))
}
