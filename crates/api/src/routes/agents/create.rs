use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::agent::{Agent, AgentSpec};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, perm};

/// Register an agent.
#[utoipa::path(post, operation_id = "create_agent", path = "/api/v1/agents", tag = "agents", request_body = AgentSpec, security(("bearer" = [])),
    responses((status = 201, body = Agent), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    ApiJson(spec): ApiJson<AgentSpec>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine.agents.create(&auth, spec).await?),
    ))
}
