//! Single sign-on with OpenID Connect (docs/sso.md): the login page's options, the two
//! browser legs of the code flow (to the provider and back), and the trade of the
//! one-time code for a session. Tokens never travel in a URL: the callback hands the web
//! app a single-use code in the fragment of its redirect, which the app posts back.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use switchyard_auth::TokenPair;
use switchyard_auth::oidc::{CallbackParams, LoginOptions, PENDING_TTL, SsoError, SsoFailure};
use switchyard_core::audit::{Actor, AuditAction, AuditEntry, AuditOutcome, TargetKind};
use utoipa::{IntoParams, ToSchema};

use super::login::client_info;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, ClientAddr, JsonBody};
use crate::routes::audit::AuditTrail;

/// The cookie that binds a login under way to the browser that started it.
const BINDING_COOKIE: &str = "switchyard_oidc";
const COOKIE_PATH: &str = "/api/v1/auth/oidc";
/// Where the web app's login page is.
const LOGIN_PAGE: &str = "/login";

/// How to sign in here: whether password login is on and single sign-on is configured.
#[utoipa::path(get, operation_id = "get_login_options", path = "/api/v1/auth/providers", tag = "auth",
    responses((status = 200, body = LoginOptions)))]
pub async fn providers(State(state): State<AppState>) -> Json<LoginOptions> {
    Json(state.engine.auth().login_options())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginParams {
    /// A path of the web app to return to after signing in (others are ignored).
    pub next: Option<String>,
}

fn binding_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BINDING_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Start single sign-on: redirects the browser to the provider, with `state`, `nonce`
/// and a PKCE challenge, and sets a short-lived HttpOnly cookie binding the login to
/// this browser.
#[utoipa::path(get, operation_id = "start_sso_login", path = "/api/v1/auth/oidc/login", tag = "auth", params(LoginParams),
    responses(
        (status = 302, description = "To the provider's authorization endpoint", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 404, description = "Single sign-on is not configured (`sso_not_configured`)", body = ErrorBody),
        (status = 429, description = "Too many logins started from this address (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "The provider is unreachable or unusable (`unavailable`)", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<LoginParams>,
) -> ApiResult<Response> {
    let auth = state.engine.auth();
    let browser = binding_cookie(&headers);
    let client = client_info(&headers, addr);
    let start = auth
        .oidc_begin(params.next.as_deref(), browser.as_deref(), &client)
        .await?;
    let mut response = redirect(&start.authorize_url);
    let secure = if auth.oidc_secure_cookie() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{BINDING_COOKIE}={}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        start.browser_binding,
        PENDING_TTL.as_secs()
    );
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::from(switchyard_core::Error::internal_msg("binding cookie")))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// Where the provider sends the browser back. Never answers with an error body: every
/// outcome is a redirect to the web app's login page, with a one-time code in the
/// fragment on success (`#sso_code=…`), or `?sso_error=<code>` (`state_mismatch`,
/// `provider_error`, `provider_unreachable`, `invalid_token`, `no_role`,
/// `account_disabled`, `email_conflict`, `email_missing`, `internal`).
#[utoipa::path(get, operation_id = "finish_sso_login", path = "/api/v1/auth/oidc/callback", tag = "auth", params(CallbackParams),
    responses((status = 302, description = "To the web app's login page, with a one-time code or an error code", headers(("Location" = String)))))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    trail: AuditTrail,
    params: Result<ApiQuery<CallbackParams>, ApiError>,
) -> Response {
    let browser = binding_cookie(&headers);
    let result = match params {
        Ok(ApiQuery(params)) => {
            state
                .engine
                .auth()
                .oidc_callback(&params, browser.as_deref())
                .await
        }
        Err(_) => Err(SsoError::new(
            SsoFailure::StateMismatch,
            "the callback's query string is malformed",
        )),
    };
    match result {
        Ok(landing) => {
            tracing::info!(user = %landing.user.id, role = landing.user.role.as_str(), "single sign-on: signed in");
            trail
                .record(
                    AuditEntry::new(Actor::user(&landing.user), AuditAction::SsoLogin)
                        .target(TargetKind::User, landing.user.id)
                        .detail(json!({"role": landing.user.role.as_str()})),
                )
                .await;
            redirect(&format!(
                "{LOGIN_PAGE}?next={}#sso_code={}",
                encode(&landing.next),
                landing.code
            ))
        }
        Err(e) => {
            if e.failure == SsoFailure::Internal {
                tracing::error!(failure = e.failure.as_str(), detail = %e.detail, "single sign-on failed");
            } else {
                tracing::warn!(failure = e.failure.as_str(), detail = %e.detail, "single sign-on failed");
            }
            trail
                .record(
                    AuditEntry::new(Actor::named("unknown"), AuditAction::SsoLoginFailed)
                        .outcome(AuditOutcome::Failure, Some(&e.detail))
                        .detail(json!({"failure": e.failure.as_str()})),
                )
                .await;
            redirect(&format!("{LOGIN_PAGE}?sso_error={}", e.failure.as_str()))
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeBody {
    /// The one-time code from the callback's redirect (`#sso_code=…`).
    pub code: String,
}

impl JsonBody for ExchangeBody {}

/// Trade the one-time code of a finished single sign-on for tokens, as a password login
/// returns them. Each code works once, within a minute.
#[utoipa::path(post, operation_id = "exchange_sso_code", path = "/api/v1/auth/oidc/exchange", tag = "auth", request_body = ExchangeBody,
    responses((status = 200, body = TokenPair),
        (status = 401, description = "The code is invalid, expired or used (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Single sign-on is not configured (`sso_not_configured`)", body = ErrorBody)))]
pub async fn exchange(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ExchangeBody>,
) -> ApiResult<Json<TokenPair>> {
    let client = client_info(&headers, addr);
    Ok(Json(
        state
            .engine
            .auth()
            .oidc_exchange(&body.code, &client)
            .await?,
    ))
}
