use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::audit::{AuditAction, TargetKind};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AuditTrail, Auth};

/// End the current session: its access and refresh tokens stop working at once.
#[utoipa::path(post, operation_id = "logout", path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    auth: Auth,
    trail: AuditTrail,
) -> ApiResult<StatusCode> {
    let result = state.engine.auth().logout(&auth).await;
    if let Some(session) = auth.session_id() {
        trail
            .on(
                &auth,
                AuditAction::AuthLogout,
                TargetKind::Session.id(session),
                &result,
            )
            .await;
    }
    result?;
    Ok(StatusCode::NO_CONTENT)
}
