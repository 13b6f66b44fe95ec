//! Authentication: passwords, sessions, access tokens, refresh rotation and API keys.
//!
//! - Passwords are hashed with argon2id on the blocking pool.
//! - Access tokens are HS256 JWTs (algorithm pinned) naming the user, role and session.
//!   Every request also checks the session in the cache, so logout and revocation act at
//!   once on every server.
//! - Refresh tokens are opaque (`<session id>.<secret>`), stored hashed, rotated on each
//!   use; presenting a used one revokes the session.
//! - API keys (`sy_…`) are shown once and stored as SHA-256 hashes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchyard_core::auth::{
    ApiKey, Credential, Permission, Principal, RefreshOutcome, Role, Scope, Session, User,
    normalize_email,
};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::error::ErrorCode;
use switchyard_core::event::BusMessage;
use switchyard_core::store::{NewApiKey, NewUser, Store};
use switchyard_core::{ApiKeyId, Error, Result, SessionId, Timestamp, UserId};

use crate::agents::require;
use crate::config::AuthConfig;
use crate::publish::send;

pub const API_KEY_PREFIX: &str = "sy_";
pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 1_024;
const JWT_ISSUER: &str = "switchyard";
const JWT_KEYS_SETTING: &str = "auth.jwt_keys";
/// How long an API key lookup is trusted without asking the database again.
/// Revocations are pushed over the bus, so this only bounds missed messages.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Lifetime of a WebSocket/SSE ticket.
pub const TICKET_TTL_S: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    role: Role,
    iat: u64,
    exp: u64,
    iss: String,
}

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

#[derive(Clone, Serialize, Deserialize)]
struct SigningKey {
    kid: String,
    secret: String,
    created_at: Timestamp,
}

struct Keys {
    current_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
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
    keys: Keys,
    key_cache: DashMap<String, CachedKey>,
    last_touch: DashMap<ApiKeyId, Instant>,
    /// Verified against when the email is unknown, so both paths take as long.
    dummy_hash: String,
}

pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Hashes a password with argon2id (default parameters) off the async executor.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal_msg(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| Error::internal("hashing task failed", e))?
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

pub fn check_password_policy(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(Error::new(
            ErrorCode::WeakPassword,
            format!("passwords need at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::new(
            ErrorCode::WeakPassword,
            format!("passwords are at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
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
        let keys = load_keys(&*store, &config).await?;
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
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Creates the first admin if there are no users. Returns the generated password
    /// when none was given (to be shown once).
    pub async fn ensure_admin(
        &self,
        email: &str,
        password: Option<String>,
    ) -> Result<Option<String>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none();
        let password = password.unwrap_or_else(|| random_token(18));
        self.create_user_unchecked(email, &password, Role::Admin)
            .await?;
        Ok(generated.then_some(password))
    }

    /// Creates a user without a permission check (CLI, bootstrap).
    pub async fn create_user_unchecked(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User> {
        let email = normalize_email(email).ok_or_else(|| {
            Error::invalid_parameter(format!("{email:?} is not a valid email address"))
        })?;
        check_password_policy(password)?;
        let password_hash = hash_password(password.to_owned()).await?;
        self.store
            .create_user(NewUser {
                id: UserId::new(),
                email,
                password_hash,
                role,
                created_at: Timestamp::now(),
            })
            .await
    }

    pub async fn create_user(
        &self,
        principal: &Principal,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User> {
        require(principal, Permission::ManageUsers)?;
        self.create_user_unchecked(email, password, role).await
    }

    async fn rate_limited(&self, keys: &[String]) -> Result<()> {
        let window = Duration::from_secs(self.config.login_window_s.max(1));
        for key in keys {
            let failures = self.cache.incr(key, 0, window).await.unwrap_or(0);
            if failures >= i64::from(self.config.login_max_failures) {
                return Err(Error::new(
                    ErrorCode::RateLimited,
                    "too many failed logins; try again later",
                )
                .with_retry_after(self.config.login_window_s));
            }
        }
        Ok(())
    }

    async fn count_failure(&self, keys: &[String]) {
        let window = Duration::from_secs(self.config.login_window_s.max(1));
        for key in keys {
            if let Err(e) = self.cache.incr(key, 1, window).await {
                tracing::warn!(error = %e, "could not count a failed login");
            }
        }
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let email = normalize_email(email).unwrap_or_default();
        let mut limits = vec![format!("login:account:{}", sha256_hex(&email))];
        if let Some(ip) = &client.ip {
            limits.push(format!("login:ip:{ip}"));
        }
        self.rate_limited(&limits).await?;
        let found = if email.is_empty() {
            None
        } else {
            self.store.user_by_email(&email).await?
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, self.dummy_hash.clone()),
        };
        let ok = verify_password(password.to_owned(), hash).await;
        let user = match user {
            Some(user) if ok && !user.disabled => user,
            _ => {
                self.count_failure(&limits).await;
                return Err(invalid_credentials());
            }
        };
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
        };
        self.cache.put_session(&session).await?;
        Ok(TokenPair {
            access_token: self.access_token(&user, session_id, now)?,
            refresh_token: refresh,
            expires_in: self.config.access_ttl_s,
            token_type: "Bearer",
        })
    }

    fn access_token(&self, user: &User, session: SessionId, now: Timestamp) -> Result<String> {
        let iat = (now.millis() / 1_000) as u64;
        let claims = Claims {
            sub: user.id.to_string(),
            sid: session.to_string(),
            role: user.role,
            iat,
            exp: iat + self.config.access_ttl_s,
            iss: JWT_ISSUER.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.keys.current_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.keys.encoding)
            .map_err(|e| Error::internal("signing a token", e))
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let invalid =
            || Error::unauthorized("the refresh token is invalid or expired; log in again");
        let (sid, _) = refresh_token.split_once('.').ok_or_else(invalid)?;
        let session_id: SessionId = sid.parse().map_err(|_| invalid())?;
        let now = Timestamp::now();
        let next = format!("{session_id}.{}", random_token(32));
        let expiry = now.plus_ms(self.config.refresh_ttl_s.saturating_mul(1_000));
        let session = match self
            .cache
            .rotate_refresh(
                session_id,
                &sha256_hex(refresh_token),
                &sha256_hex(&next),
                expiry,
                now,
            )
            .await?
        {
            RefreshOutcome::Rotated(s) => s,
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
        Ok(TokenPair {
            access_token: self.access_token(&user, session_id, now)?,
            refresh_token: next,
            expires_in: self.config.access_ttl_s,
            token_type: "Bearer",
        })
    }

    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        if let Some(sid) = principal.session_id() {
            self.cache.delete_session(sid).await?;
        }
        Ok(())
    }

    /// Turns a bearer credential into a principal, or `unauthorized`/`token_expired`.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.authenticate_key(bearer).await;
        }
        let header = jsonwebtoken::decode_header(bearer)
            .map_err(|_| Error::unauthorized("malformed access token"))?;
        if header.alg != Algorithm::HS256 {
            return Err(Error::unauthorized("unsupported token algorithm"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.decoding.get(kid))
            .ok_or_else(|| Error::unauthorized("the token was signed with an unknown key"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[JWT_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(bearer, key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::new(
                ErrorCode::TokenExpired,
                "the access token has expired; refresh it",
            ),
            _ => Error::unauthorized("invalid access token"),
        })?;
        let claims = data.claims;
        let user_id: UserId = claims
            .sub
            .parse()
            .map_err(|_| Error::unauthorized("invalid access token"))?;
        let session_id: SessionId = claims
            .sid
            .parse()
            .map_err(|_| Error::unauthorized("invalid access token"))?;
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

    async fn authenticate_key(&self, secret: &str) -> Result<Principal> {
        let hash = sha256_hex(secret);
        let now = Timestamp::now();
        let cached = self.key_cache.get(&hash).and_then(|c| {
            let fresh = c.fetched.elapsed() < KEY_CACHE_TTL && c.expires_at.is_none_or(|e| e > now);
            fresh.then(|| (c.principal.clone(), c.key_id))
        });
        let (principal, key_id) = match cached {
            Some(hit) => hit,
            None => {
                let key = self
                    .store
                    .api_key_by_hash(&hash)
                    .await?
                    .filter(|k| k.is_usable(now))
                    .ok_or_else(|| Error::unauthorized("invalid, expired or revoked API key"))?;
                let user = match self.store.get_user(key.user_id).await? {
                    Some(u) if !u.disabled => u,
                    _ => return Err(Error::unauthorized("invalid, expired or revoked API key")),
                };
                let principal = Principal {
                    user_id: user.id,
                    role: user.role,
                    credential: Credential::ApiKey {
                        id: key.id,
                        scopes: key.scopes.clone(),
                    },
                };
                self.key_cache.insert(
                    hash,
                    CachedKey {
                        principal: principal.clone(),
                        key_id: key.id,
                        expires_at: key.expires_at,
                        fetched: Instant::now(),
                    },
                );
                (principal, key.id)
            }
        };
        self.touch_key(key_id, now);
        Ok(principal)
    }

    /// Records key use at most once a minute per key, without delaying the request.
    fn touch_key(&self, id: ApiKeyId, now: Timestamp) {
        let due = self
            .last_touch
            .get(&id)
            .is_none_or(|t| t.elapsed() > Duration::from_secs(60));
        if due {
            self.last_touch.insert(id, Instant::now());
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(id, now).await {
                    tracing::debug!(error = %e, "could not record API key use");
                }
            });
        }
    }

    /// Drops cached credentials named by a `CredentialRevoked` bus message.
    pub fn forget_credential(&self, key: &str) {
        if let Some(id) = key.strip_prefix("apikey:") {
            self.key_cache.retain(|_, c| c.key_id.to_string() != id);
        } else if let Some(id) = key.strip_prefix("user:") {
            self.key_cache
                .retain(|_, c| c.principal.user_id.to_string() != id);
        }
    }

    /// A short-lived, single-use ticket that authenticates one WebSocket or SSE connection
    /// (browsers cannot set headers on those). Returns the ticket and its lifetime.
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
        if let Some(sid) = principal.session_id()
            && self
                .cache
                .get_session(sid)
                .await?
                .is_none_or(|s| s.user_id != principal.user_id)
        {
            return Err(Error::unauthorized("the session has ended; log in again"));
        }
        Ok(principal)
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: Vec<Scope>,
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiKey, String)> {
        require(principal, Permission::ManageOwnKeys)?;
        self.issue_api_key(principal.user_id, principal.role, name, scopes, expires_at)
            .await
    }

    /// Issues a key for a user without a permission check (CLI, bootstrap).
    pub async fn issue_api_key(
        &self,
        user_id: UserId,
        role: Role,
        name: &str,
        mut scopes: Vec<Scope>,
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::invalid_parameter(
                "the key name must be 1-100 characters",
            ));
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Error::invalid_parameter(
                "give the key at least one scope: submit, read, worker or admin",
            ));
        }
        if scopes.contains(&Scope::Admin) && role != Role::Admin {
            return Err(Error::forbidden(
                "only admins can create keys with the admin scope",
            ));
        }
        let now = Timestamp::now();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(Error::invalid_parameter("expires_at must be in the future"));
        }
        let secret = format!("{API_KEY_PREFIX}{}", random_token(32));
        let key = ApiKey {
            id: ApiKeyId::new(),
            user_id,
            name: name.to_owned(),
            prefix: secret.chars().take(API_KEY_PREFIX.len() + 8).collect(),
            scopes,
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        self.store
            .create_api_key(NewApiKey {
                key: key.clone(),
                secret_hash: sha256_hex(&secret),
            })
            .await?;
        Ok((key, secret))
    }

    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        require(principal, Permission::ManageOwnKeys)?;
        let scope = (!principal.allows(Permission::ManageUsers)).then_some(principal.user_id);
        self.store.list_api_keys(scope).await
    }

    pub async fn revoke_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<()> {
        require(principal, Permission::ManageOwnKeys)?;
        let scope = (!principal.allows(Permission::ManageUsers)).then_some(principal.user_id);
        if !self
            .store
            .revoke_api_key(id, scope, Timestamp::now())
            .await?
        {
            return Err(Error::new(
                ErrorCode::ApiKeyNotFound,
                format!("API key {id} not found"),
            ));
        }
        let key = format!("apikey:{id}");
        self.forget_credential(&key);
        send(&self.bus, BusMessage::CredentialRevoked { key }).await;
        Ok(())
    }
}

async fn load_keys(store: &dyn Store, config: &AuthConfig) -> Result<Keys> {
    let mut list: Vec<SigningKey> = match &config.jwt_secret {
        Some(secret) => {
            if secret.len() < 32 {
                return Err(Error::invalid_parameter(
                    "auth.jwt_secret must be at least 32 characters",
                ));
            }
            vec![SigningKey {
                kid: "config".into(),
                secret: secret.clone(),
                created_at: Timestamp::EPOCH,
            }]
        }
        None => {
            let fresh = vec![SigningKey {
                kid: random_token(6),
                secret: random_token(32),
                created_at: Timestamp::now(),
            }];
            let encoded =
                serde_json::to_string(&fresh).map_err(|e| Error::internal("encode keys", e))?;
            let stored = store.init_setting(JWT_KEYS_SETTING, &encoded).await?;
            serde_json::from_str(&stored)
                .map_err(|e| Error::internal("stored signing keys are unreadable", e))?
        }
    };
    list.sort_by_key(|k| k.created_at);
    let current = list
        .last()
        .ok_or_else(|| Error::internal_msg("no signing key"))?;
    Ok(Keys {
        current_kid: current.kid.clone(),
        encoding: EncodingKey::from_secret(current.secret.as_bytes()),
        decoding: list
            .iter()
            .map(|k| (k.kid.clone(), DecodingKey::from_secret(k.secret.as_bytes())))
            .collect(),
    })
}
