use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::backup::BackupRecord;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Most records to return, 1-1000 (default 100).
    pub limit: Option<u32>,
}

/// The backups of the deployment and how they are taken.
#[derive(Serialize, ToSchema)]
pub struct BackupList {
    /// Newest first: running, succeeded, failed, interrupted (its server stopped) and
    /// deleted (beyond `keep`) ones.
    pub items: Vec<BackupRecord>,
    /// `backup.schedule` (cron, UTC), if backups are taken on a schedule.
    pub schedule: Option<String>,
    /// `backup.target`: where they go, if anywhere.
    pub target: Option<String>,
    /// `backup.keep`: successful backups kept at the target.
    pub keep: u32,
    /// When the schedule takes the next one.
    pub next_at: Option<Timestamp>,
}

/// Backups the servers took or are taking (admins).
#[utoipa::path(get, operation_id = "list_backups", path = "/api/v1/backups", tag = "system",
    params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "Backups, newest first", body = BackupList),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth<perm::ManageSystem>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<BackupList>> {
    let backups = state.engine.backups();
    Ok(Json(BackupList {
        items: backups.list(params.limit.unwrap_or(100)).await?,
        schedule: backups.config().schedule.clone(),
        target: backups.target(),
        keep: backups.config().keep,
        next_at: backups.next_at(),
    }))
}
