use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth, perm};

/// Delete an agent. Built-in agents and agents others fall back to cannot be deleted.
#[utoipa::path(delete, operation_id = "delete_agent", path = "/api/v1/agents/{name}", tag = "agents", params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Built in, or another agent's fallback", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.engine.agents().delete(&auth, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
