use axum::Json;
use axum::extract::State;
use switchyard_core::monitoring::AlertRule;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// One alert rule with its current state.
#[utoipa::path(get, operation_id = "get_alert_rule", path = "/api/v1/alerts/rules/{id}", tag = "monitoring",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = AlertRule), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AlertRule>> {
    Ok(Json(state.engine.monitoring.get_rule(id).await?))
}
