//! Access-token signing keys: HS256 only (the algorithm is pinned on both sides), each
//! key named by a `kid`. Keys come from the configuration or are generated once and
//! kept in the database so every server of a cluster shares them. Rotation adds a key:
//! new tokens use it, and older keys keep verifying until their tokens have expired.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use switchyard_core::error::ErrorCode;
use switchyard_core::store::Store;
use switchyard_core::{Error, Result, Timestamp};

use super::random_token;
use crate::config::AuthConfig;

pub const JWT_ISSUER: &str = "switchyard";
pub const KEYS_SETTING: &str = "auth.jwt_keys";
/// An unknown `kid` triggers a reload (another server rotated), at most this often.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(5);
/// Signing picks up a key rotated elsewhere within this long.
const SIGNING_RELOAD_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    secret: String,
    created_at: Timestamp,
}

struct KeySet {
    current_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
}

pub struct SigningKeys {
    keys: RwLock<KeySet>,
    /// Configured keys never come from (or go to) the database.
    configured: bool,
    last_reload: Mutex<Instant>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub role: switchyard_core::auth::Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
}

fn key_set(mut list: Vec<StoredKey>) -> Result<KeySet> {
    list.sort_by_key(|k| k.created_at);
    let current = list
        .last()
        .ok_or_else(|| Error::internal_msg("no signing key"))?;
    Ok(KeySet {
        current_kid: current.kid.clone(),
        encoding: EncodingKey::from_secret(current.secret.as_bytes()),
        decoding: list
            .iter()
            .map(|k| (k.kid.clone(), DecodingKey::from_secret(k.secret.as_bytes())))
            .collect(),
    })
}

fn configured_keys(config: &AuthConfig) -> Result<Option<Vec<StoredKey>>> {
    let Some(current) = &config.jwt_secret else {
        return Ok(None);
    };
    let mut list = Vec::new();
    for (i, secret) in config
        .jwt_previous_secrets
        .iter()
        .chain(std::iter::once(current))
        .enumerate()
    {
        if secret.len() < 32 {
            return Err(Error::invalid_parameter(
                "auth.jwt_secret and auth.jwt_previous_secrets need at least 32 characters",
            ));
        }
        list.push(StoredKey {
            kid: format!("config-{i}"),
            secret: secret.clone(),
            created_at: Timestamp::from_millis(i as i64),
        });
    }
    Ok(Some(list))
}

async fn stored_keys(store: &dyn Store) -> Result<Vec<StoredKey>> {
    let fresh = vec![StoredKey {
        kid: random_token(6),
        secret: random_token(32),
        created_at: Timestamp::now(),
    }];
    let encoded = serde_json::to_string(&fresh).map_err(|e| Error::internal("encode keys", e))?;
    let stored = store.init_setting(KEYS_SETTING, &encoded).await?;
    serde_json::from_str(&stored)
        .map_err(|e| Error::internal("stored signing keys are unreadable", e))
}

impl SigningKeys {
    pub async fn load(store: &dyn Store, config: &AuthConfig) -> Result<Self> {
        let (list, configured) = match configured_keys(config)? {
            Some(list) => (list, true),
            None => (stored_keys(store).await?, false),
        };
        Ok(SigningKeys {
            keys: RwLock::new(key_set(list)?),
            configured,
            last_reload: Mutex::new(Instant::now()),
        })
    }

    /// Picks up keys another server added (rotation). No-op for configured keys.
    pub async fn reload(&self, store: &dyn Store) -> Result<()> {
        if self.configured {
            return Ok(());
        }
        *self.last_reload.lock() = Instant::now();
        let set = key_set(stored_keys(store).await?)?;
        *self.keys.write() = set;
        Ok(())
    }

    /// Reloads before signing if the keys are older than a minute, so a rotation on any
    /// server is followed by all. Failures keep the current keys.
    pub async fn refresh_for_signing(&self, store: &dyn Store) {
        let stale = !self.configured && self.last_reload.lock().elapsed() >= SIGNING_RELOAD_EVERY;
        if stale && let Err(e) = self.reload(store).await {
            tracing::warn!(error = %e, "could not reload signing keys; using the current ones");
        }
    }

    /// Adds a new signing key and drops keys whose tokens can no longer be valid.
    /// Returns the new key id.
    pub async fn rotate(&self, store: &dyn Store, access_ttl_s: u64) -> Result<String> {
        if self.configured {
            return Err(Error::invalid_state(
                "signing keys come from auth.jwt_secret; rotate by moving it to auth.jwt_previous_secrets and setting a new one",
            ));
        }
        let now = Timestamp::now();
        let mut list = stored_keys(store).await?;
        list.sort_by_key(|k| k.created_at);
        // A key stays while tokens it signed may live: until its successor is older than the token lifetime.
        let horizon = now.minus_ms(access_ttl_s.saturating_mul(1_000) + 60_000);
        let successors: Vec<Timestamp> = list
            .iter()
            .skip(1)
            .map(|k| k.created_at)
            .chain(std::iter::once(now))
            .collect();
        let mut kept: Vec<StoredKey> = list
            .into_iter()
            .zip(successors)
            .filter(|(_, next)| *next > horizon)
            .map(|(k, _)| k)
            .collect();
        let kid = random_token(6);
        kept.push(StoredKey {
            kid: kid.clone(),
            secret: random_token(32),
            created_at: now,
        });
        let encoded =
            serde_json::to_string(&kept).map_err(|e| Error::internal("encode keys", e))?;
        store.put_setting(KEYS_SETTING, &encoded).await?;
        *self.keys.write() = key_set(kept)?;
        Ok(kid)
    }

    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let keys = self.keys.read();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.current_kid.clone());
        jsonwebtoken::encode(&header, claims, &keys.encoding)
            .map_err(|e| Error::internal("signing a token", e))
    }

    /// Verifies signature (HS256 only), issuer and expiry.
    pub async fn verify(&self, store: &dyn Store, token: &str) -> Result<Claims> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::unauthorized("malformed access token"))?;
        if header.alg != Algorithm::HS256 {
            return Err(Error::unauthorized("unsupported token algorithm"));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::unauthorized("the token names no key"))?;
        let known = self.keys.read().decoding.contains_key(&kid);
        if !known && !self.configured && self.last_reload.lock().elapsed() >= RELOAD_AT_MOST_EVERY {
            self.reload(store).await?;
        }
        let keys = self.keys.read();
        let key = keys
            .decoding
            .get(&kid)
            .ok_or_else(|| Error::unauthorized("the token was signed with an unknown key"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[JWT_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // No slack beyond the whole second `exp` is written in: an expired token is
        // refused at once. Servers of a cluster keep their clocks in sync (NTP), and a
        // client that gets `token_expired` refreshes.
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::new(
                    ErrorCode::TokenExpired,
                    "the access token has expired; refresh it",
                ),
                _ => Error::unauthorized("invalid access token"),
            })
    }
}
