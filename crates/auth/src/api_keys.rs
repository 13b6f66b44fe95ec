//! API keys: `sy_` + 32 random bytes, shown once, stored as a SHA-256 hash with a
//! visible prefix. Lookups are cached per server for a short time; revocations are
//! pushed over the bus so they act at once everywhere.

use std::time::{Duration, Instant};

use switchyard_core::auth::{ApiKey, Credential, Permission, Principal, Role, Scope};
use switchyard_core::error::ErrorCode;
use switchyard_core::event::BusMessage;
use switchyard_core::store::NewApiKey;
use switchyard_core::{ApiKeyId, Error, Result, Timestamp, UserId};

use super::{AuthService, CachedKey, random_token, sha256_hex};

pub const API_KEY_PREFIX: &str = "sy_";
/// How long a key lookup is trusted without asking the database again. Revocations are
/// pushed over the bus, so this only bounds a missed message.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

impl AuthService {
    pub(super) async fn authenticate_key(&self, secret: &str) -> Result<Principal> {
        let hash = sha256_hex(secret);
        let now = Timestamp::now();
        let cached = self.key_cache.get(&hash).and_then(|c| {
            let fresh = c.fetched.elapsed() < KEY_CACHE_TTL && c.expires_at.is_none_or(|e| e > now);
            fresh.then(|| (c.principal.clone(), c.key_id))
        });
        let (principal, key_id) = match cached {
            Some(hit) => hit,
            None => {
                let invalid = || Error::unauthorized("invalid, expired or revoked API key");
                let key = self
                    .store
                    .api_key_by_hash(&hash)
                    .await?
                    .filter(|k| k.is_usable(now))
                    .ok_or_else(invalid)?;
                let user = match self.store.get_user(key.user_id).await? {
                    Some(u) if !u.disabled => u,
                    _ => return Err(invalid()),
                };
                let principal = Principal {
                    user_id: user.id,
                    role: user.role,
                    credential: Credential::ApiKey {
                        id: key.id,
                        scopes: key.scopes.clone(),
                    },
                };
                let entry = CachedKey {
                    principal: principal.clone(),
                    key_id: key.id,
                    expires_at: key.expires_at,
                    fetched: Instant::now(),
                };
                self.key_cache.insert(hash, entry);
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

    /// Drops cached credentials named by a `CredentialRevoked` bus message
    /// (`apikey:<id>` or `user:<id>`).
    pub fn forget_credential(&self, key: &str) {
        if let Some(id) = key.strip_prefix("apikey:") {
            self.key_cache.retain(|_, c| c.key_id.to_string() != id);
        } else if let Some(id) = key.strip_prefix("user:") {
            self.key_cache
                .retain(|_, c| c.principal.user_id.to_string() != id);
        }
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: Vec<Scope>,
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiKey, String)> {
        principal.require(Permission::ManageOwnKeys)?;
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

    /// The caller's keys; admins see everyone's.
    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        principal.require(Permission::ManageOwnKeys)?;
        let scope = (!principal.allows(Permission::ManageUsers)).then_some(principal.user_id);
        self.store.list_api_keys(scope).await
    }

    /// Revokes one of the caller's keys (admins: any key). Acts at once on every server.
    pub async fn revoke_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<()> {
        principal.require(Permission::ManageOwnKeys)?;
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
        self.bus.send(BusMessage::CredentialRevoked { key }).await;
        Ok(())
    }
}
