use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, perm};
use crate::routes::Items;
use crate::views::AgentView;

/// Every registered agent, by name.
#[utoipa::path(get, operation_id = "list_agents", path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, description = "Every agent", body = Items<AgentView>)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ReadAgents>,
) -> ApiResult<Json<Items<AgentView>>> {
    Ok(Json(Items {
        items: state
            .engine
            .agents()
            .list(&auth)
            .await?
            .into_iter()
            .map(AgentView::from)
            .collect(),
    }))
}
