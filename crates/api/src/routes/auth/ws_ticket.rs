use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Auth;

#[derive(Serialize, ToSchema)]
pub struct Ticket {
    /// Pass as `?ticket=` when opening a WebSocket or an event stream. Works once.
    pub ticket: String,
    /// Seconds until it expires unused.
    pub expires_in: u64,
}

/// A short-lived, single-use ticket for a WebSocket or event-stream connection (browsers
/// cannot set headers on those).
#[utoipa::path(post, operation_id = "create_ws_ticket", path = "/api/v1/auth/ws-ticket", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody)))]
pub async fn ws_ticket(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Ticket>> {
    let (ticket, expires_in) = state.engine.auth().issue_ticket(&auth).await?;
    Ok(Json(Ticket { ticket, expires_in }))
}
