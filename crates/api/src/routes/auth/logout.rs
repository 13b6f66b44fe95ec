use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Auth;

/// End the current session: its access and refresh tokens stop working at once.
#[utoipa::path(post, operation_id = "logout", path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    state.engine.auth().logout(&auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
