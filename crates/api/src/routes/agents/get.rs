use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};
use crate::views::AgentView;

/// One agent.
#[utoipa::path(get, operation_id = "get_agent", path = "/api/v1/agents/{name}", tag = "agents", params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "The agent", body = AgentView), (status = 404, description = "No such agent", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<perm::ReadAgents>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AgentView>> {
    Ok(Json(
        state.engine.agents().describe(&auth, &name).await?.into(),
    ))
}
