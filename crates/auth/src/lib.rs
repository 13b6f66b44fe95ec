//! Authentication (the Authentication Flow): passwords, sessions, access tokens,
//! refresh rotation, API keys and connection tickets.
//!
//! - Passwords are argon2id, hashed on the blocking pool ([`passwords`]).
//! - Access tokens are HS256 JWTs naming user, role and session, signed with rotatable
//!   keys ([`signing`]). Every request also checks the session in the cache, so logout
//!   and revocation act at once on every server.
//! - Refresh tokens are opaque (`<session id>.<secret>`), stored hashed, rotated on each
//!   use; presenting a spent one revokes the session (reuse detection), except the one
//!   the last rotation spent, within a short grace window (a concurrent or retried
//!   refresh), which gets that rotation's token again.
//! - Logins are throttled per account and address, per address and per account with
//!   doubling lockouts that never lock an account out on an address it logged in from
//!   recently ([`lockout`]).
//! - API keys (`sy_…`) are shown once and stored as SHA-256 hashes ([`api_keys`]).
//! - Single sign-on with an OpenID Connect provider ends in the same sessions ([`oidc`]);
//!   `auth.password_login = false` then turns passwords off, but for a break-glass admin.

pub mod api_keys;
mod config;
pub mod lockout;
pub mod oidc;
pub mod passwords;
pub mod signing;
pub mod users;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchyard_core::auth::{
    Credential, Principal, RefreshOutcome, Rotation, Session, User, normalize_email,
};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::error::ErrorCode;
use switchyard_core::store::Store;
use switchyard_core::{ApiKeyId, Error, Result, SessionId, Timestamp, UserId};

pub use api_keys::API_KEY_PREFIX;
pub use passwords::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, check_password_policy, hash_password};
pub use users::UserUpdate;

pub use crate::config::AuthConfig;
use signing::{Claims, JWT_ISSUER, SigningKeys};

/// Lifetime of a WebSocket/SSE ticket.
pub const TICKET_TTL_S: u64 = 30;

/// What login and refresh return.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub token_type: &'static str,
}

/// Who is on the other end, for sessions and rate limits.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

struct CachedKey {
    principal: Principal,
    key_id: ApiKeyId,
    expires_at: Option<Timestamp>,
    fetched: Instant,
}

pub struct AuthService {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    bus: Arc<dyn EventBus>,
    config: AuthConfig,
    keys: SigningKeys,
    key_cache: DashMap<String, CachedKey>,
    last_touch: DashMap<ApiKeyId, Instant>,
    /// Verified against when the email is unknown, so both paths take as long.
    dummy_hash: String,
    /// Single sign-on, when configured.
    oidc: Option<oidc::Oidc>,
}

pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The one-time pad that seals the refresh token a rotation issues: derived from the
/// token that rotation spent, which the server never stores (it keeps its SHA-256, which
/// is a different function of it), so the sealed copy is of use only to whoever presents
/// the spent token again.
fn seal_pad(spent: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"switchyard refresh seal\0");
    h.update(spent.as_bytes());
    h.finalize().into()
}

fn seal(secret: &[u8; 32], spent: &str) -> String {
    let pad = seal_pad(spent);
    let sealed: Vec<u8> = secret.iter().zip(pad).map(|(s, p)| s ^ p).collect();
    URL_SAFE_NO_PAD.encode(sealed)
}

fn unseal(sealed: &str, spent: &str) -> Option<[u8; 32]> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(sealed).ok()?.try_into().ok()?;
    let pad = seal_pad(spent);
    Some(std::array::from_fn(|i| bytes[i] ^ pad[i]))
}

fn invalid_credentials() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "wrong email or password")
}

impl AuthService {
    pub async fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        bus: Arc<dyn EventBus>,
        config: AuthConfig,
    ) -> Result<Self> {
        config.validate()?;
        let oidc = config.oidc.as_ref().map(oidc::Oidc::new).transpose()?;
        let keys = SigningKeys::load(&*store, &config).await?;
        let dummy_hash = hash_password(random_token(24)).await?;
        Ok(AuthService {
            store,
            cache,
            bus,
            config,
            keys,
            key_cache: DashMap::new(),
            last_touch: DashMap::new(),
            dummy_hash,
            oidc,
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let email = normalize_email(email).unwrap_or_default();
        if !self.config.password_login
            && self
                .config
                .break_glass_email
                .as_deref()
                .and_then(normalize_email)
                .is_none_or(|b| b != email)
        {
            return Err(Error::new(
                ErrorCode::PasswordLoginDisabled,
                "password login is turned off on this server (auth.password_login = false); sign in with single sign-on",
            ));
        }
        let attempt = lockout::Attempt::new(&email, client.ip.as_deref());
        lockout::check(&*self.cache, &self.config, &attempt).await?;
        let found = if email.is_empty() {
            None
        } else {
            self.store.user_by_email(&email).await?
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, self.dummy_hash.clone()),
        };
        let ok = passwords::verify_password(password.to_owned(), hash).await;
        let user = match user {
            Some(user) if ok && !user.disabled => user,
            _ => {
                lockout::fail(&*self.cache, &self.config, &attempt).await;
                return Err(invalid_credentials());
            }
        };
        lockout::succeed(&*self.cache, &self.config, &attempt).await;
        self.start_session(&user, client).await
    }

    /// A new session for a user who has proven who they are (a password, single sign-on).
    pub(crate) async fn start_session(
        &self,
        user: &User,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let now = Timestamp::now();
        let session_id = SessionId::new();
        let refresh = format!("{session_id}.{}", random_token(32));
        let session = Session {
            id: session_id,
            user_id: user.id,
            created_at: now,
            expires_at: now.plus_ms(self.config.refresh_ttl_s.saturating_mul(1_000)),
            last_refreshed_at: now,
            user_agent: client
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(256).collect()),
            ip: client.ip.clone(),
            refresh_hash: sha256_hex(&refresh),
            used_hashes: Vec::new(),
            sealed_next: String::new(),
        };
        self.cache.put_session(&session).await?;
        self.token_pair(user, session_id, refresh, now).await
    }

    async fn token_pair(
        &self,
        user: &User,
        session: SessionId,
        refresh_token: String,
        now: Timestamp,
    ) -> Result<TokenPair> {
        self.keys.refresh_for_signing(&*self.store).await;
        let iat = (now.millis() / 1_000) as u64;
        let claims = Claims {
            sub: user.id.to_string(),
            sid: session.to_string(),
            role: user.role,
            iat,
            exp: iat + self.config.access_ttl_s,
            iss: JWT_ISSUER.to_owned(),
        };
        Ok(TokenPair {
            access_token: self.keys.sign(&claims)?,
            refresh_token,
            expires_in: self.config.access_ttl_s,
            token_type: "Bearer",
        })
    }

    /// Rotates a refresh token. A repeat of the last rotation (a concurrent or retried
    /// request with the token it spent) within `auth.refresh_reuse_grace_s` gets the token
    /// that rotation issued, unsealed with the presented token, and a fresh access token:
    /// the session keeps one line of refresh tokens. Any other spent token revokes it.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let invalid =
            || Error::unauthorized("the refresh token is invalid or expired; log in again");
        let (sid, _) = refresh_token.split_once('.').ok_or_else(invalid)?;
        let session_id: SessionId = sid.parse().map_err(|_| invalid())?;
        let now = Timestamp::now();
        let secret: [u8; 32] = rand::random();
        let next = format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(secret));
        let presented = sha256_hex(refresh_token);
        let new_hash = sha256_hex(&next);
        let sealed_next = seal(&secret, refresh_token);
        let rotation = Rotation {
            presented_hash: &presented,
            new_hash: &new_hash,
            sealed_next: &sealed_next,
            new_expiry: now.plus_ms(self.config.refresh_ttl_s.saturating_mul(1_000)),
            now,
            grace_ms: self.config.refresh_reuse_grace_s.saturating_mul(1_000),
        };
        let (session, next) = match self.cache.rotate_refresh(session_id, &rotation).await? {
            RefreshOutcome::Rotated(s) => (s, next),
            RefreshOutcome::Repeated(s) => {
                let issued = unseal(&s.sealed_next, refresh_token)
                    .map(|secret| format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(secret)))
                    .filter(|issued| sha256_hex(issued) == s.refresh_hash)
                    .ok_or_else(invalid)?;
                tracing::debug!(session = %session_id, "repeated refresh within the grace window");
                (s, issued)
            }
            RefreshOutcome::Reused => {
                tracing::warn!(session = %session_id, "refresh token reused; session revoked");
                return Err(Error::unauthorized(
                    "this refresh token was already used; the session has been revoked",
                ));
            }
            RefreshOutcome::Invalid => return Err(invalid()),
        };
        let user = match self.store.get_user(session.user_id).await? {
            Some(u) if !u.disabled => u,
            _ => {
                self.cache.delete_session(session_id).await?;
                return Err(invalid());
            }
        };
        self.token_pair(&user, session_id, next, now).await
    }

    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        if let Some(sid) = principal.session_id() {
            self.cache.delete_session(sid).await?;
        }
        Ok(())
    }

    /// Turns a bearer credential (access token or API key) into a principal, or
    /// `unauthorized` / `token_expired`. One signature check and one session lookup.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.authenticate_key(bearer).await;
        }
        let claims = self.keys.verify(&*self.store, bearer).await?;
        let invalid = || Error::unauthorized("invalid access token");
        let user_id: UserId = claims.sub.parse().map_err(|_| invalid())?;
        let session_id: SessionId = claims.sid.parse().map_err(|_| invalid())?;
        match self.cache.get_session(session_id).await? {
            Some(s) if s.user_id == user_id => {}
            _ => return Err(Error::unauthorized("the session has ended; log in again")),
        }
        Ok(Principal {
            user_id,
            role: claims.role,
            credential: Credential::Session { session_id },
        })
    }

    /// Adds a new signing key (see [`signing`]); returns its id.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        self.keys
            .rotate(&*self.store, self.config.access_ttl_s)
            .await
    }

    /// Picks up signing keys added by another process.
    pub async fn reload_signing_keys(&self) -> Result<()> {
        self.keys.reload(&*self.store).await
    }

    /// A short-lived, single-use ticket that authenticates one WebSocket or event-stream
    /// connection (browsers cannot set headers on those). Returns the ticket and its lifetime.
    pub async fn issue_ticket(&self, principal: &Principal) -> Result<(String, u64)> {
        let ticket = random_token(32);
        let value =
            serde_json::to_vec(principal).map_err(|e| Error::internal("encode ticket", e))?;
        self.cache
            .set(
                &format!("ticket:{}", sha256_hex(&ticket)),
                &value,
                Duration::from_secs(TICKET_TTL_S),
            )
            .await?;
        Ok((ticket, TICKET_TTL_S))
    }

    /// Redeems a ticket once; the session or key behind it must still be valid.
    pub async fn redeem_ticket(&self, ticket: &str) -> Result<Principal> {
        let invalid = || Error::unauthorized("invalid, expired or already used ticket");
        let key = format!("ticket:{}", sha256_hex(ticket));
        let bytes = self.cache.get(&key).await?.ok_or_else(invalid)?;
        if !self.cache.delete(&key).await? {
            return Err(invalid());
        }
        let principal: Principal = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        match &principal.credential {
            Credential::Session { session_id } => {
                if self
                    .cache
                    .get_session(*session_id)
                    .await?
                    .is_none_or(|s| s.user_id != principal.user_id)
                {
                    return Err(Error::unauthorized("the session has ended; log in again"));
                }
            }
            Credential::ApiKey { id, .. } => {
                let usable = self
                    .store
                    .list_api_keys(Some(principal.user_id))
                    .await?
                    .into_iter()
                    .any(|k| k.id == *id && k.is_usable(Timestamp::now()));
                if !usable {
                    return Err(Error::unauthorized(
                        "the API key behind this ticket was revoked",
                    ));
                }
            }
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_the_token_it_replaced() {
        let secret: [u8; 32] = rand::random();
        let sealed = seal(&secret, "sid.spent");
        assert_eq!(unseal(&sealed, "sid.spent"), Some(secret));
        assert_ne!(unseal(&sealed, "sid.other"), Some(secret));
        assert_ne!(
            sealed,
            URL_SAFE_NO_PAD.encode(secret),
            "the sealed copy is not the token"
        );
        assert_eq!(unseal("not base64 !", "sid.spent"), None);
        assert_eq!(unseal("", "sid.spent"), None);
    }
}
