use axum::Json;
use axum::extract::State;
use switchyard_core::agent::Agent;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// One agent.
#[utoipa::path(get, operation_id = "get_agent", path = "/api/v1/agents/{name}", tag = "agents", params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<perm::ReadAgents>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(state.engine.agents.describe(&auth, &name).await?))
}
