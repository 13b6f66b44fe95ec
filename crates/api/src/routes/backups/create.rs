use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::backup::BackupRecord;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AuditTrail, Auth, perm};

/// Takes a backup now, in the background, to `backup.target` (admins). Follow it in
/// `GET /api/v1/backups`.
#[utoipa::path(post, operation_id = "create_backup", path = "/api/v1/backups", tag = "system",
    security(("bearer" = [])),
    responses((status = 202, description = "Started; its record, `running`", body = BackupRecord),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "No backup.target, or a backup is already running on this server", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageSystem>,
    trail: AuditTrail,
) -> ApiResult<(StatusCode, Json<BackupRecord>)> {
    let result = state.engine.backups().start("manual").await;
    // The backup's id; the entry records that it was started (its outcome is its record's).
    let target = result
        .as_ref()
        .map_or_else(|_| "-".to_owned(), |r| r.id.to_string());
    let detail = result
        .as_ref()
        .ok()
        .map(|r| serde_json::json!({"name": r.name, "target": r.target}));
    trail
        .on_with(
            &auth,
            AuditAction::BackupCreate,
            TargetKind::Backup.id(target),
            detail,
            &result,
        )
        .await;
    let record = result?;
    Ok((StatusCode::ACCEPTED, Json(record)))
}
