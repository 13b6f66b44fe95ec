use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, perm};
use crate::routes::Items;
use crate::views::AlertRuleView;

/// Alert rules with their current state.
#[utoipa::path(get, operation_id = "list_alert_rules", path = "/api/v1/alerts/rules", tag = "monitoring",
    security(("bearer" = [])),
    responses((status = 200, description = "Every rule", body = Items<AlertRuleView>)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadSystem>,
) -> ApiResult<Json<Items<AlertRuleView>>> {
    let items = state.engine.monitoring().list_rules().await?;
    Ok(Json(Items {
        items: items.into_iter().map(AlertRuleView::from).collect(),
    }))
}
