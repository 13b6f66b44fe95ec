use axum::Json;
use axum::extract::State;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::monitoring::AlertRuleSpec;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, AuditTrail, Auth, perm};
use crate::views::AlertRuleView;

/// Replace an alert rule's definition (admins); its state carries over.
#[utoipa::path(put, operation_id = "update_alert_rule", path = "/api/v1/alerts/rules/{id}", tag = "monitoring",
    params(("id" = Uuid, Path)), request_body = AlertRuleSpec, security(("bearer" = [])),
    responses((status = 200, description = "Replaced", body = AlertRuleView), (status = 404, description = "No such rule", body = ErrorBody),
        (status = 422, description = "An invalid rule", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth<perm::ManageSystem>,
    trail: AuditTrail,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(spec): ApiJson<AlertRuleSpec>,
) -> ApiResult<Json<AlertRuleView>> {
    let result = state.engine.monitoring().update_rule(id, spec).await;
    trail
        .on(
            &auth,
            AuditAction::AlertUpdate,
            TargetKind::AlertRule.id(id),
            &result,
        )
        .await;
    Ok(Json(result?.into()))
}
