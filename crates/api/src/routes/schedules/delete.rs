use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// Delete a schedule. The tasks it fired stay.
#[utoipa::path(delete, operation_id = "delete_schedule", path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let result = state.engine.schedules().delete(&auth, &name).await;
    trail
        .on(
            &auth,
            AuditAction::ScheduleDelete,
            TargetKind::Schedule.id(&name),
            &result,
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}
