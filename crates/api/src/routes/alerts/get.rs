use axum::Json;
use axum::extract::State;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::views::AlertRuleView;

/// One alert rule with its current state.
#[utoipa::path(get, operation_id = "get_alert_rule", path = "/api/v1/alerts/rules/{id}", tag = "monitoring",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The rule", body = AlertRuleView), (status = 404, description = "No such rule", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AlertRuleView>> {
    Ok(Json(state.engine.monitoring().get_rule(id).await?.into()))
}
