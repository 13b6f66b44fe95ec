use axum::Json;
use axum::extract::State;
use switchyard_core::monitoring::AlertRule;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// Alert rules with their current state.
#[utoipa::path(get, operation_id = "list_alert_rules", path = "/api/v1/alerts/rules", tag = "monitoring",
    security(("bearer" = [])),
    responses((status = 200, body = Items<AlertRule>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
) -> ApiResult<Json<Items<AlertRule>>> {
    let items = state.engine.monitoring.store.list_alert_rules().await?;
    Ok(Json(Items { items }))
}
