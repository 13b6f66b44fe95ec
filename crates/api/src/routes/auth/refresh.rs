use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchyard_auth::TokenPair;
use switchyard_core::audit::{Actor, AuditAction, AuditEntry, TargetKind};
use switchyard_core::{ErrorCode, SessionId};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, JsonBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

impl JsonBody for RefreshBody {}

/// Exchange a refresh token for new tokens. The refresh token rotates: the old one is
/// spent, and presenting it again revokes the session.
#[utoipa::path(post, operation_id = "refresh_tokens", path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    trail: AuditTrail,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenPair>> {
    let result = state.engine.auth().refresh(&body.refresh_token).await;
    // A spent token presented again revoked its session: the server did that, and it is
    // the sign of a leaked token, so it is recorded (routine refreshes are not).
    if let Err(e) = &result
        && e.code == ErrorCode::Unauthorized
        && e.message.contains("already used")
        && let Some((session, _)) = body.refresh_token.split_once('.')
        && let Ok(session) = session.parse::<SessionId>()
    {
        let entry = AuditEntry::new(Actor::system(), AuditAction::SessionRevoke)
            .target(TargetKind::Session, session)
            .origin(trail.origin())
            .detail(serde_json::json!({"cause": "refresh_token_reused"}));
        trail.record(entry).await;
    }
    Ok(Json(result?))
}
