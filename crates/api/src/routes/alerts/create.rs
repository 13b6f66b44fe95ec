use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::monitoring::AlertRuleSpec;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, Auth, perm};
use crate::views::AlertRuleView;

/// Create an alert rule (admins). Kinds: `failure_rate` (threshold a fraction 0-1 over
/// `window_s`), `queue_depth`, `oldest_task_age` (seconds) and `no_worker` (fires when at
/// most `threshold` live workers serve the agent).
#[utoipa::path(post, operation_id = "create_alert_rule", path = "/api/v1/alerts/rules", tag = "monitoring",
    request_body = AlertRuleSpec, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = AlertRuleView), (status = 422, description = "An invalid rule", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageSystem>,
    trail: AuditTrail,
    ApiJson(spec): ApiJson<AlertRuleSpec>,
) -> ApiResult<(StatusCode, Json<AlertRuleView>)> {
    let name = spec.name.clone();
    let result = state.engine.monitoring().create_rule(spec).await;
    // The new rule's id; its name when there is none.
    let target = result.as_ref().map_or(name, |r| r.id.to_string());
    trail
        .on(
            &auth,
            AuditAction::AlertCreate,
            TargetKind::AlertRule.id(target),
            &result,
        )
        .await;
    Ok((StatusCode::CREATED, Json(result?.into())))
}
