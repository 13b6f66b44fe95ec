use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use switchyard_core::agent::AgentSpec;
use switchyard_core::audit::{AuditAction, TargetKind};
use switchyard_core::{Error, ErrorCode};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, AuditTrail, Auth, perm};
use crate::views::AgentView;

/// Replace an agent's definition (creating it if it does not exist). The name in the
/// body may be omitted; if given it must match the path. A secret config value sent as
/// `"***"` (as responses show it) keeps the stored value; one left out is removed.
/// Turning an agent into a `command` agent needs `agents.allow_command` (403 otherwise).
#[utoipa::path(put, operation_id = "update_agent", path = "/api/v1/agents/{name}", tag = "agents", params(("name" = String, Path)),
    request_body = AgentSpec, security(("bearer" = [])),
    responses((status = 200, description = "Replaced", body = AgentView), (status = 201, description = "Created", body = AgentView),
        (status = 409, description = "A built-in agent's kind cannot change", body = ErrorBody), (status = 422, description = "An invalid definition", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth<perm::ManageAgents>,
    trail: AuditTrail,
    ApiPath(name): ApiPath<String>,
    ApiJson(mut body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<AgentView>)> {
    if let Some(obj) = body.as_object_mut() {
        obj.entry("name")
            .or_insert_with(|| Value::String(name.clone()));
    }
    let spec: AgentSpec = serde_json::from_value(body).map_err(|e| {
        Error::new(
            ErrorCode::InvalidBody,
            format!("the request body has the wrong shape: {e}"),
        )
    })?;
    let agents = &state.engine.agents();
    let (action, result) = match agents.update(&auth, &name, spec.clone()).await {
        Err(e) if e.code == ErrorCode::AgentNotFound => {
            (AuditAction::AgentCreate, agents.create(&auth, spec).await)
        }
        updated => (AuditAction::AgentUpdate, updated),
    };
    trail
        .on(&auth, action, TargetKind::Agent.id(&name), &result)
        .await;
    let status = if action == AuditAction::AgentCreate {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(result?.into())))
}
