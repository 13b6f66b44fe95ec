use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::FileId;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// Deletes a file. Its bytes go once no other file has the same content.
#[utoipa::path(delete, operation_id = "delete_file", path = "/api/v1/files/{id}", tag = "files",
    params(("id" = FileId, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such file, or not yours", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth<perm::SubmitTasks>,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<StatusCode> {
    state.engine.files().delete(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
