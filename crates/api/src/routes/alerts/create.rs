use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::monitoring::AlertRuleSpec;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, perm};
use crate::views::AlertRuleView;

/// Create an alert rule (admins). Kinds: `failure_rate` (threshold a fraction 0-1 over
/// `window_s`), `queue_depth`, `oldest_task_age` (seconds) and `no_worker` (fires when at
/// most `threshold` live workers serve the agent).
#[utoipa::path(post, operation_id = "create_alert_rule", path = "/api/v1/alerts/rules", tag = "monitoring",
    request_body = AlertRuleSpec, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = AlertRuleView), (status = 422, description = "An invalid rule", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _auth: Auth<perm::ManageSystem>,
    ApiJson(spec): ApiJson<AlertRuleSpec>,
) -> ApiResult<(StatusCode, Json<AlertRuleView>)> {
    let rule = state.engine.monitoring().create_rule(spec).await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}
