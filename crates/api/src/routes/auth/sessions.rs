use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use switchyard_core::{SessionId, Timestamp};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth};
use crate::routes::Items;

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub last_refreshed_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of this request.
    pub current: bool,
}

/// Your sessions (logins), oldest first.
#[utoipa::path(get, operation_id = "list_sessions", path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Items<SessionView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Items<SessionView>>> {
    let current = auth.session_id();
    let items = state
        .engine
        .auth
        .sessions(&auth)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: Some(s.id) == current,
            id: s.id,
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(Items { items }))
}

/// End one of your sessions: its tokens stop working at once.
#[utoipa::path(delete, operation_id = "delete_session", path = "/api/v1/auth/sessions/{id}", tag = "auth", params(("id" = SessionId, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    state.engine.auth.end_session(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
