use axum::Json;
use axum::extract::State;
use switchyard_core::agent::Agent;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// Every registered agent, by name.
#[utoipa::path(get, operation_id = "list_agents", path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Items<Agent>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<perm::ReadAgents>,
) -> ApiResult<Json<Items<Agent>>> {
    Ok(Json(Items {
        items: state.engine.agents.list(&auth).await?,
    }))
}
