use axum::Json;
use axum::extract::State;
use switchyard_core::FileId;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::views::FileView;

/// A file's record: name, size, type, SHA-256, owner, and the task of an artifact.
#[utoipa::path(get, operation_id = "get_file", path = "/api/v1/files/{id}", tag = "files",
    params(("id" = FileId, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The file", body = FileView),
        (status = 404, description = "No such file, or not yours", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<perm::ReadTasks>,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(state.engine.files().get(&auth, id).await?.into()))
}
