//! Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256).
//!
//! 1. [`AuthService::oidc_begin`] makes a `state`, a `nonce` and a PKCE verifier, keeps
//!    them in the cache under the state's hash for [`PENDING_TTL`] together with the hash
//!    of a random value the browser holds in an HttpOnly cookie, and returns the
//!    provider's authorization URL. A state that was never issued, was already used, or
//!    comes back in another browser is refused.
//! 2. [`AuthService::oidc_callback`] takes the pending login once, trades the code (with
//!    the verifier) for tokens, verifies the ID token ([`id_token`]), maps the role from
//!    `role_claim`, finds the user by (issuer, subject) or provisions one, and leaves a
//!    one-time code in the cache for [`HANDOFF_TTL`].
//! 3. [`AuthService::oidc_exchange`] trades that code, once, for a normal session: from
//!    there on it is the same access and refresh tokens as a password login, and no
//!    token ever travels in a URL.

pub mod config;
pub mod id_token;
pub mod provider;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_core::auth::{Role, User, normalize_email};
use switchyard_core::error::ErrorCode;
use switchyard_core::store::NewUser;
use switchyard_core::{Error, Result, Timestamp, UserId};

use crate::{AuthService, ClientInfo, TokenPair, UserUpdate, random_token, sha256_hex};
use config::OidcConfig;
use provider::Provider;

/// How long a login may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long the web app has to trade the one-time code for a session.
pub const HANDOFF_TTL: Duration = Duration::from_secs(60);
/// A password hash no password matches: users made by single sign-on have no local
/// password until an admin sets one.
const NO_PASSWORD: &str = "!sso";
/// Longest `next` path kept for the return.
const MAX_NEXT: usize = 2_048;
/// Logins one client address may start per [`PENDING_TTL`]: each is kept in the cache
/// until it finishes or expires.
pub const MAX_PENDING_PER_ADDRESS: i64 = 100;

/// Why a single sign-on failed. The code is shown to the user (the login page explains
/// it); the detail goes to the log only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsoFailure {
    /// The state is unknown, used, expired or from another browser.
    StateMismatch,
    /// The provider answered with an error (the user cancelled, a misconfigured client).
    ProviderError,
    ProviderUnreachable,
    /// The ID token failed verification.
    InvalidToken,
    /// None of the user's role-claim values is mapped, and there is no default role.
    NoRole,
    AccountDisabled,
    /// A local account has the provider's email but is not linked to this identity.
    EmailConflict,
    /// The provider gave no (verified) email address.
    EmailMissing,
    Internal,
}

impl SsoFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            SsoFailure::StateMismatch => "state_mismatch",
            SsoFailure::ProviderError => "provider_error",
            SsoFailure::ProviderUnreachable => "provider_unreachable",
            SsoFailure::InvalidToken => "invalid_token",
            SsoFailure::NoRole => "no_role",
            SsoFailure::AccountDisabled => "account_disabled",
            SsoFailure::EmailConflict => "email_conflict",
            SsoFailure::EmailMissing => "email_missing",
            SsoFailure::Internal => "internal",
        }
    }
}

/// A failed single sign-on: what to show, and what to log.
#[derive(Debug)]
pub struct SsoError {
    pub failure: SsoFailure,
    /// For the server log: never a token, code or secret.
    pub detail: String,
}

impl SsoError {
    pub fn new(failure: SsoFailure, detail: impl Into<String>) -> Self {
        SsoError {
            failure,
            detail: detail.into(),
        }
    }
}

impl From<Error> for SsoError {
    fn from(e: Error) -> Self {
        SsoError::new(SsoFailure::Internal, e.to_string())
    }
}

/// What the login page learns about the ways to sign in.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LoginOptions {
    /// Whether email and password logins are accepted (`auth.password_login`).
    pub password_login: bool,
    /// Password login is off but a break-glass administrator may still use it.
    pub break_glass: bool,
    /// Single sign-on, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcOption>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OidcOption {
    /// Shown as "Sign in with <name>".
    pub name: String,
    /// Where the browser goes to start (a full-page navigation).
    pub login_url: String,
}

/// The start of a login: send the browser to `authorize_url` with `browser_binding` in
/// its cookie.
pub struct OidcStart {
    pub authorize_url: String,
    pub browser_binding: String,
}

/// What the provider sent back to the callback.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's error code (RFC 6749 §4.1.2.1), e.g. `access_denied`.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: the issuer of this answer, when the provider says.
    pub iss: Option<String>,
}

/// A finished sign-on: the one-time code for the web app, where to go after, and who.
pub struct OidcLanding {
    pub code: String,
    pub next: String,
    pub user: User,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
    browser_hash: String,
    next: String,
}

#[derive(Serialize, Deserialize)]
struct Handoff {
    user_id: UserId,
}

pub(crate) struct Oidc {
    pub(crate) config: OidcConfig,
    pub(crate) provider: Provider,
}

impl Oidc {
    pub(crate) fn new(config: &OidcConfig) -> Result<Self> {
        config.validate()?;
        let provider = Provider::new(config).map_err(|e| Error::internal_msg(e.detail))?;
        Ok(Oidc {
            config: config.clone(),
            provider,
        })
    }
}

fn pending_key(state: &str) -> String {
    format!("oidc:pending:{}", sha256_hex(state))
}

fn handoff_key(code: &str) -> String {
    format!("oidc:handoff:{}", sha256_hex(code))
}

/// Only a path on this site: never send a person elsewhere after signing in.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= MAX_NEXT
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The values of a (possibly dotted) claim: a string, or the strings of a list.
fn claim_values(claims: &serde_json::Map<String, Value>, path: &str) -> Vec<String> {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut value = claims.get(first);
    for part in parts {
        value = value.and_then(|v| v.get(part));
    }
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The highest role any of the claim's values maps to, else the default.
pub fn map_role(
    config: &OidcConfig,
    claims: &serde_json::Map<String, Value>,
) -> std::result::Result<Role, SsoError> {
    let values = config
        .role_claim
        .as_deref()
        .map(|c| claim_values(claims, c))
        .unwrap_or_default();
    values
        .iter()
        .filter_map(|v| config.role_map.get(v).copied())
        .max()
        .or(config.default_role)
        .ok_or_else(|| {
            SsoError::new(
                SsoFailure::NoRole,
                format!(
                    "none of the values of the {} claim ({values:?}) is in auth.oidc.role_map, and there is no auth.oidc.default_role",
                    config.role_claim.as_deref().unwrap_or("(no role_claim)")
                ),
            )
        })
}

impl AuthService {
    fn oidc(&self) -> Result<&Oidc> {
        self.oidc.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::SsoNotConfigured,
                "single sign-on is not configured on this server ([auth.oidc])",
            )
        })
    }

    /// Whether the binding cookie needs `Secure` (the callback is served over https).
    pub fn oidc_secure_cookie(&self) -> bool {
        self.oidc
            .as_ref()
            .is_some_and(|o| o.config.redirect_url.starts_with("https://"))
    }

    /// The ways to sign in, for the login page.
    pub fn login_options(&self) -> LoginOptions {
        LoginOptions {
            password_login: self.config.password_login,
            break_glass: !self.config.password_login && self.config.break_glass_email.is_some(),
            oidc: self.oidc.as_ref().map(|o| OidcOption {
                name: o.config.name.trim().to_owned(),
                login_url: "/api/v1/auth/oidc/login".to_owned(),
            }),
        }
    }

    /// Starts a login: the provider's authorization URL. A browser that already holds a
    /// binding (another tab's login under way) keeps it, so both logins can finish.
    pub async fn oidc_begin(
        &self,
        next: Option<&str>,
        browser: Option<&str>,
        client: &ClientInfo,
    ) -> Result<OidcStart> {
        let oidc = self.oidc()?;
        let address = client.ip.as_deref().unwrap_or("unknown");
        let started = self
            .cache
            .incr(&format!("oidc:begun:{address}"), 1, PENDING_TTL)
            .await?;
        if started > MAX_PENDING_PER_ADDRESS {
            return Err(Error::new(
                ErrorCode::RateLimited,
                format!(
                    "too many single sign-on logins started from this address (at most {MAX_PENDING_PER_ADDRESS} per {} minutes)",
                    PENDING_TTL.as_secs() / 60
                ),
            )
            .with_retry_after(PENDING_TTL.as_secs()));
        }
        let metadata = oidc.provider.metadata().await.map_err(|e| {
            tracing::warn!(failure = e.failure.as_str(), detail = %e.detail, "single sign-on: the provider is not usable");
            Error::unavailable(format!(
                "the single sign-on provider is not reachable or not usable ({}); try again later",
                e.failure.as_str()
            ))
        })?;
        let state = random_token(32);
        let nonce = random_token(32);
        let verifier = random_token(48);
        let browser_binding = browser
            .filter(|b| {
                b.len() == 43
                    && b.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            })
            .map(str::to_owned)
            .unwrap_or_else(|| random_token(32));
        let pending = Pending {
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            browser_hash: sha256_hex(&browser_binding),
            next: safe_next(next),
        };
        let value = serde_json::to_vec(&pending).map_err(|e| Error::internal("encode login", e))?;
        self.cache
            .set(&pending_key(&state), &value, PENDING_TTL)
            .await?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| Error::internal("authorization endpoint", e))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &oidc.config.client_id)
            .append_pair("redirect_uri", &oidc.config.redirect_url)
            .append_pair("scope", &oidc.config.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(OidcStart {
            authorize_url: url.into(),
            browser_binding,
        })
    }

    /// Finishes a login at the callback: see the module documentation.
    pub async fn oidc_callback(
        &self,
        params: &CallbackParams,
        browser: Option<&str>,
    ) -> std::result::Result<OidcLanding, SsoError> {
        let oidc = self.oidc.as_ref().ok_or_else(|| {
            SsoError::new(SsoFailure::Internal, "single sign-on is not configured")
        })?;
        let state = params.state.as_deref().unwrap_or_default();
        if state.is_empty() || state.len() > 512 {
            return Err(SsoError::new(
                SsoFailure::StateMismatch,
                "the callback has no usable state parameter",
            ));
        }
        // Taken once: a second use of the same state finds nothing.
        let key = pending_key(state);
        let stored = self.cache.get(&key).await?;
        let pending: Pending = match stored {
            Some(bytes) if self.cache.delete(&key).await? => serde_json::from_slice(&bytes)
                .map_err(|e| SsoError::new(SsoFailure::Internal, format!("stored login: {e}")))?,
            _ => {
                return Err(SsoError::new(
                    SsoFailure::StateMismatch,
                    "unknown, expired or already used state",
                ));
            }
        };
        let same_browser = browser.is_some_and(|b| {
            let presented = sha256_hex(b);
            presented.len() == pending.browser_hash.len()
                && presented
                    .bytes()
                    .zip(pending.browser_hash.bytes())
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
        });
        if !same_browser {
            return Err(SsoError::new(
                SsoFailure::StateMismatch,
                "the login was started in another browser (the binding cookie is missing or different)",
            ));
        }
        if let Some(error) = &params.error {
            let code: String = error.chars().take(64).collect();
            let description: String = params
                .error_description
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(256)
                .collect();
            return Err(SsoError::new(
                SsoFailure::ProviderError,
                format!("the provider answered {code:?}: {description:?}"),
            ));
        }
        if let Some(iss) = &params.iss
            && iss != oidc.provider.issuer()
        {
            return Err(SsoError::new(
                SsoFailure::InvalidToken,
                format!("the answer names another issuer ({iss:?}; RFC 9207 mix-up defence)"),
            ));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 4_096)
            .ok_or_else(|| {
                SsoError::new(SsoFailure::ProviderError, "the callback carries no code")
            })?;
        let tokens = oidc
            .provider
            .exchange_code(code, &pending.verifier, &oidc.config.redirect_url)
            .await?;
        let id_token = tokens.id_token.ok_or_else(|| {
            SsoError::new(
                SsoFailure::InvalidToken,
                "the token response has no id_token",
            )
        })?;
        let now = (Timestamp::now().millis() / 1_000).max(0) as u64;
        let mut claims = id_token::verify(
            &oidc.provider,
            &id_token,
            &id_token::Expected {
                client_id: &oidc.config.client_id,
                nonce: &pending.nonce,
                now,
            },
        )
        .await?;
        self.complete_claims(oidc, &mut claims, tokens.access_token.as_deref())
            .await?;
        let role = map_role(&oidc.config, &claims.all)?;
        let user = self.provision(oidc, &claims, role).await?;
        let code = random_token(32);
        let value = serde_json::to_vec(&Handoff { user_id: user.id })
            .map_err(|e| SsoError::new(SsoFailure::Internal, e.to_string()))?;
        self.cache
            .set(&handoff_key(&code), &value, HANDOFF_TTL)
            .await?;
        Ok(OidcLanding {
            code,
            next: pending.next,
            user,
        })
    }

    /// Adds from userinfo what the ID token leaves out (the email, the role claim): many
    /// providers put only `sub` in the ID token of the code flow.
    async fn complete_claims(
        &self,
        oidc: &Oidc,
        claims: &mut id_token::IdClaims,
        access_token: Option<&str>,
    ) -> std::result::Result<(), SsoError> {
        let role_missing = oidc
            .config
            .role_claim
            .as_deref()
            .is_some_and(|c| claim_values(&claims.all, c).is_empty());
        if claims.email.is_some() && !role_missing {
            return Ok(());
        }
        let Some(access_token) = access_token else {
            return Ok(());
        };
        let Some(info) = oidc.provider.userinfo(access_token).await? else {
            return Ok(());
        };
        // Core §5.3.2: userinfo about someone else must not be used.
        if info.get("sub").and_then(Value::as_str) != Some(claims.sub.as_str()) {
            return Err(SsoError::new(
                SsoFailure::InvalidToken,
                "the userinfo answer is about another subject",
            ));
        }
        if claims.email.is_none() {
            claims.email = info.get("email").and_then(Value::as_str).map(str::to_owned);
            claims.email_verified = info.get("email_verified").and_then(Value::as_bool);
        }
        for (name, value) in info {
            claims.all.entry(name).or_insert(value);
        }
        Ok(())
    }

    /// The user of this (issuer, subject), created on the first login; its role follows
    /// the provider's on every login.
    async fn provision(
        &self,
        oidc: &Oidc,
        claims: &id_token::IdClaims,
        role: Role,
    ) -> std::result::Result<User, SsoError> {
        let issuer = oidc.provider.issuer();
        if let Some(user) = self.store.user_by_oidc_subject(issuer, &claims.sub).await? {
            return self.follow_role(user, role).await;
        }
        if claims.email_verified == Some(false) {
            return Err(SsoError::new(
                SsoFailure::EmailMissing,
                "the provider says the user's email address is not verified",
            ));
        }
        let email = claims
            .email
            .as_deref()
            .and_then(normalize_email)
            .ok_or_else(|| {
                SsoError::new(
                    SsoFailure::EmailMissing,
                    "the provider gave no valid email address (ask for the email scope)",
                )
            })?;
        let created = self
            .store
            .create_oidc_user(
                NewUser {
                    id: UserId::new(),
                    email: email.clone(),
                    password_hash: NO_PASSWORD.to_owned(),
                    role,
                    created_at: Timestamp::now(),
                },
                issuer,
                &claims.sub,
            )
            .await;
        match created {
            Ok(user) => {
                tracing::info!(user = %user.id, role = role.as_str(), "single sign-on: provisioned a new user");
                Ok(user)
            }
            Err(e) if e.code == ErrorCode::EmailTaken => {
                // Either a concurrent first login of the same person won the race, or a
                // local account already has this email: never linked by email alone.
                match self.store.user_by_oidc_subject(issuer, &claims.sub).await? {
                    Some(user) => self.follow_role(user, role).await,
                    None => Err(SsoError::new(
                        SsoFailure::EmailConflict,
                        format!(
                            "a local account has the email {email} and is not linked to this identity"
                        ),
                    )),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn follow_role(&self, user: User, role: Role) -> std::result::Result<User, SsoError> {
        if user.disabled {
            return Err(SsoError::new(
                SsoFailure::AccountDisabled,
                format!("user {} is disabled", user.id),
            ));
        }
        if user.role == role {
            return Ok(user);
        }
        // Ends the user's other sessions, as any role change does.
        match self
            .update_user_unchecked(
                user.id,
                UserUpdate {
                    role: Some(role),
                    ..UserUpdate::default()
                },
            )
            .await
        {
            Ok(updated) => {
                tracing::info!(user = %user.id, from = user.role.as_str(), to = role.as_str(), "single sign-on: role changed at the provider");
                Ok(updated)
            }
            Err(e) if e.code == ErrorCode::InvalidState => {
                tracing::warn!(user = %user.id, "single sign-on: the provider demotes the only active admin; the role is kept");
                Ok(user)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Trades the one-time code of a finished sign-on for a session, once.
    pub async fn oidc_exchange(&self, code: &str, client: &ClientInfo) -> Result<TokenPair> {
        self.oidc()?;
        let invalid = || {
            Error::unauthorized(
                "the sign-in code is invalid, expired or already used; sign in again",
            )
        };
        if code.is_empty() || code.len() > 256 {
            return Err(invalid());
        }
        let key = handoff_key(code);
        let bytes = self.cache.get(&key).await?.ok_or_else(invalid)?;
        if !self.cache.delete(&key).await? {
            return Err(invalid());
        }
        let handoff: Handoff = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let user = match self.store.get_user(handoff.user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(invalid()),
        };
        self.start_session(&user, client).await
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
    use super::*;
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig {
            role_claim: Some("realm_access.roles".into()),
            role_map: [
                ("sy-admins".to_owned(), Role::Admin),
                ("sy-ops".to_owned(), Role::Operator),
            ]
            .into(),
            ..OidcConfig::default()
        }
    }

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_highest_mapped_role_wins() {
        let c = claims(json!({"realm_access": {"roles": ["staff", "sy-ops", "sy-admins"]}}));
        assert_eq!(map_role(&config(), &c).unwrap(), Role::Admin);
        let c = claims(json!({"realm_access": {"roles": "sy-ops"}}));
        assert_eq!(map_role(&config(), &c).unwrap(), Role::Operator);
    }

    #[test]
    fn unmapped_users_get_the_default_or_are_refused() {
        let c = claims(json!({"realm_access": {"roles": ["staff"]}, "groups": ["sy-admins"]}));
        let e = map_role(&config(), &c).unwrap_err();
        assert_eq!(e.failure, SsoFailure::NoRole);
        assert!(e.detail.contains("staff"), "{}", e.detail);
        let with_default = OidcConfig {
            default_role: Some(Role::Viewer),
            ..config()
        };
        assert_eq!(map_role(&with_default, &c).unwrap(), Role::Viewer);
        assert_eq!(
            map_role(&with_default, &claims(json!({}))).unwrap(),
            Role::Viewer
        );
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/tasks?x=1")), "/tasks?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "tasks",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
