use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::backup::BackupRecord;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};

/// Takes a backup now, in the background, to `backup.target` (admins). Follow it in
/// `GET /api/v1/backups`.
#[utoipa::path(post, operation_id = "create_backup", path = "/api/v1/backups", tag = "system",
    security(("bearer" = [])),
    responses((status = 202, description = "Started; its record, `running`", body = BackupRecord),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "No backup.target, or a backup is already running on this server", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _auth: Auth<perm::ManageSystem>,
) -> ApiResult<(StatusCode, Json<BackupRecord>)> {
    let record = state.engine.backups().start("manual").await?;
    Ok((StatusCode::ACCEPTED, Json(record)))
}
