use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// Delete an alert rule (admins). Its past events stay.
#[utoipa::path(delete, operation_id = "delete_alert_rule", path = "/api/v1/alerts/rules/{id}", tag = "monitoring",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth<perm::ManageSystem>,
    trail: AuditTrail,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let result = state.engine.monitoring().delete_rule(id).await;
    trail
        .on(
            &auth,
            AuditAction::AlertDelete,
            TargetKind::AlertRule.id(id),
            &result,
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}
