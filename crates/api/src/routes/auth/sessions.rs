use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::SessionId;
use switchyard_core::audit::{AuditAction, TargetKind};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, AuditTrail, Auth};
use crate::routes::Items;
use crate::views::SessionView;

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
        .auth()
        .sessions(&auth)
        .await?
        .into_iter()
        .map(|s| SessionView::new(s, current))
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
    trail: AuditTrail,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    let result = state.engine.auth().end_session(&auth, id).await;
    trail
        .on(
            &auth,
            AuditAction::SessionRevoke,
            TargetKind::Session.id(id),
            &result,
        )
        .await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}
