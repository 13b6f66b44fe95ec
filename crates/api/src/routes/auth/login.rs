use std::net::SocketAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use switchyard_auth::{ClientInfo, TokenPair};
use switchyard_core::audit::{Actor, AuditAction, AuditEntry, TargetKind};
use switchyard_core::auth::normalize_email;
use switchyard_core::{ErrorCode, Result};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuditTrail, ClientAddr, JsonBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

impl JsonBody for LoginBody {}

pub fn client_info(headers: &HeaderMap, addr: Option<SocketAddr>) -> ClientInfo {
    ClientInfo {
        ip: addr.map(|a| a.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// Log in with email and password; returns an access token and a refresh token.
#[utoipa::path(post, operation_id = "login", path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody),
        (status = 403, description = "Password login is off (`password_login_disabled`, `auth.password_login = false`)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    trail: AuditTrail,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<TokenPair>> {
    let client = client_info(&headers, addr);
    let result = state
        .engine
        .auth()
        .login(&body.email, &body.password, &client)
        .await;
    record_login(&state, &trail, &body.email, &result).await;
    Ok(Json(result?))
}

/// `auth.login` by the user the new session belongs to, or `auth.login_failed` by the
/// email tried (never the password). Refusals of the login throttle are not recorded:
/// they cost the client nothing, and each would cost the database a write.
async fn record_login(
    state: &AppState,
    trail: &AuditTrail,
    email: &str,
    result: &Result<TokenPair>,
) {
    match result {
        Ok(pair) => {
            // The fresh access token says who logged in, and into which session.
            if let Ok(principal) = state.engine.auth().authenticate(&pair.access_token).await {
                let mut entry = trail.by(&principal, AuditAction::AuthLogin).await;
                if let Some(session) = principal.session_id() {
                    entry = entry.target(TargetKind::Session, session);
                }
                trail.record(entry).await;
            }
        }
        Err(e) if e.code == ErrorCode::InvalidCredentials => {
            let tried = normalize_email(email).unwrap_or_else(|| email.trim().to_owned());
            let entry = AuditEntry::new(Actor::named(&tried), AuditAction::AuthLoginFailed)
                .origin(trail.origin())
                .failed(e);
            trail.record(entry).await;
        }
        Err(_) => {}
    }
}
