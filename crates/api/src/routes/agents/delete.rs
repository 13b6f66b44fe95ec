use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth, perm};

/// Delete an agent. Built-in agents and agents others fall back to cannot be deleted.
#[utoipa::path(delete, operation_id = "delete_agent", path = "/api/v1/agents/{name}", tag = "agents", params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Built in, or another agent's fallback", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let result = state.engine.agents().delete(&auth, &name).await;
    trail
        .on(
            &auth,
            AuditAction::AgentDelete,
            TargetKind::Agent.id(&name),
            &result,
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}
