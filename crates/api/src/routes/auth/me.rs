use axum::Json;
use axum::extract::State;
use serde::Serialize;
use switchyard_core::auth::{Credential, Scope, User};
use switchyard_core::{ApiKeyId, SessionId};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Auth;

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<ApiKeyId>,
    /// For API keys: what the key may do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
}

/// Who the credential belongs to.
#[utoipa::path(get, operation_id = "get_me", path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Me>> {
    let user = state.engine.auth().me(&auth).await?;
    let (session_id, api_key_id, scopes) = match &auth.credential {
        Credential::Session { session_id } => (Some(*session_id), None, None),
        Credential::ApiKey { id, scopes } => (None, Some(*id), Some(scopes.clone())),
    };
    Ok(Json(Me {
        user,
        session_id,
        api_key_id,
        scopes,
    }))
}
