use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::agent::AgentSpec;
use switchyard_core::audit::{AuditAction, TargetKind};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, Auth, perm};
use crate::views::AgentView;

/// Register an agent (admins). Secret config values (an `http` agent's header values, a
/// `command` agent's `env` values) are write-only: responses show them as `"***"`. A
/// `command` agent runs a program on the server's machine: 403 unless the server allows
/// them (`agents.allow_command`).
#[utoipa::path(post, operation_id = "create_agent", path = "/api/v1/agents", tag = "agents", request_body = AgentSpec, security(("bearer" = [])),
    responses((status = 201, description = "Registered", body = AgentView), (status = 409, description = "An agent of that name exists", body = ErrorBody),
        (status = 422, description = "An invalid definition", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiJson(spec): ApiJson<AgentSpec>,
) -> ApiResult<(StatusCode, Json<AgentView>)> {
    let name = spec.name.clone();
    let result = state.engine.agents().create(&auth, spec).await;
    trail
        .on(
            &auth,
            AuditAction::AgentCreate,
            TargetKind::Agent.id(name),
            &result,
        )
        .await;
    Ok((StatusCode::CREATED, Json(result?.into())))
}
