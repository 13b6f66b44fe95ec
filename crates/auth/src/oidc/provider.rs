//! The OpenID provider as seen from here: its discovery document and signing keys, both
//! cached, and the two back-channel calls of the code flow (token, userinfo).
//!
//! The key set is fetched once and kept; a token signed with a key it does not name
//! (the provider rotated its keys) fetches it again, at most once per
//! [`Provider::refetch_every`], so a stream of tokens with made-up `kid`s cannot turn
//! this server into a load generator against the provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use parking_lot::Mutex;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::config::{OidcConfig, TokenEndpointAuth};
use super::{SsoError, SsoFailure};

/// The discovery document is fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3_600);
/// Unknown `kid`s refetch the key set at most this often by default.
pub const JWKS_REFETCH_EVERY: Duration = Duration::from_secs(30);
/// Largest answer read from the provider.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The parts of the discovery document this client uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// Unset: RS256, the one every provider must support.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub id_token: Option<String>,
    pub access_token: Option<String>,
}

struct Cached<T> {
    value: Arc<T>,
    fetched: Instant,
}

pub struct Provider {
    issuer: String,
    discovery_url: String,
    client_id: String,
    client_secret: Option<String>,
    auth: TokenEndpointAuth,
    http: reqwest::Client,
    metadata: Mutex<Option<Cached<Metadata>>>,
    jwks: Mutex<Option<Cached<JwkSet>>>,
    /// When an unknown `kid` last fetched the key set.
    last_refetch: Mutex<Option<Instant>>,
    refetch_every: Duration,
}

fn unreachable(what: &str, e: impl std::fmt::Display) -> SsoError {
    SsoError::new(SsoFailure::ProviderUnreachable, format!("{what}: {e}"))
}

impl Provider {
    pub fn new(config: &OidcConfig) -> Result<Self, SsoError> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            // The provider's answers are read as they are: a redirect there is a
            // misconfiguration to report, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SsoError::new(SsoFailure::Internal, format!("HTTP client: {e}")))?;
        Ok(Provider {
            issuer: config.issuer.clone(),
            discovery_url: config.discovery_url(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            auth: config.token_endpoint_auth,
            http,
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
            last_refetch: Mutex::new(None),
            refetch_every: JWKS_REFETCH_EVERY,
        })
    }

    /// How often an unknown `kid` may fetch the key set again (tests shorten it).
    pub fn refetch_every(mut self, every: Duration) -> Self {
        self.refetch_every = every;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document, from the cache while it is fresh.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, SsoError> {
        if let Some(c) = &*self.metadata.lock()
            && c.fetched.elapsed() < METADATA_TTL
        {
            return Ok(c.value.clone());
        }
        let metadata: Metadata = self.get_json("discovery", &self.discovery_url).await?;
        if metadata.issuer != self.issuer {
            return Err(SsoError::new(
                SsoFailure::ProviderError,
                format!(
                    "the discovery document names issuer {:?}, not the configured auth.oidc.issuer {:?}",
                    metadata.issuer, self.issuer
                ),
            ));
        }
        for (name, url) in [
            ("authorization_endpoint", &metadata.authorization_endpoint),
            ("token_endpoint", &metadata.token_endpoint),
            ("jwks_uri", &metadata.jwks_uri),
        ] {
            if !matches!(
                url::Url::parse(url)
                    .map(|u| u.scheme().to_owned())
                    .as_deref(),
                Ok("https" | "http")
            ) {
                return Err(SsoError::new(
                    SsoFailure::ProviderError,
                    format!("the discovery document's {name} is not an http(s) URL: {url:?}"),
                ));
            }
        }
        if let Some(methods) = &metadata.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(SsoError::new(
                SsoFailure::ProviderError,
                "the provider does not offer PKCE with S256 (code_challenge_methods_supported)",
            ));
        }
        let metadata = Arc::new(metadata);
        *self.metadata.lock() = Some(Cached {
            value: metadata.clone(),
            fetched: Instant::now(),
        });
        Ok(metadata)
    }

    /// The key that signed a token: by its `kid`, or the only signing key when the
    /// token names none. An unknown `kid` fetches the key set again (rate-limited)
    /// before it is refused.
    pub async fn signing_key(&self, kid: Option<&str>) -> Result<Jwk, SsoError> {
        let cached = self.jwks.lock().as_ref().map(|c| c.value.clone());
        let keys = match cached {
            Some(keys) => keys,
            None => self.fetch_jwks().await?,
        };
        if let Some(key) = pick(&keys, kid)? {
            return Ok(key);
        }
        let may_refetch = {
            let mut last = self.last_refetch.lock();
            let allowed = last.is_none_or(|t| t.elapsed() >= self.refetch_every);
            if allowed {
                *last = Some(Instant::now());
            }
            allowed
        };
        let unknown = || {
            SsoError::new(
                SsoFailure::InvalidToken,
                format!(
                    "the ID token is signed with a key the provider does not publish (kid {})",
                    kid.unwrap_or("absent")
                ),
            )
        };
        if !may_refetch {
            return Err(unknown());
        }
        tracing::info!(
            kid = kid.unwrap_or(""),
            "unknown signing key; fetching the provider's keys again"
        );
        let keys = self.fetch_jwks().await?;
        pick(&keys, kid)?.ok_or_else(unknown)
    }

    async fn fetch_jwks(&self) -> Result<Arc<JwkSet>, SsoError> {
        let metadata = self.metadata().await?;
        let keys: JwkSet = self.get_json("key set", &metadata.jwks_uri).await?;
        let keys = Arc::new(keys);
        *self.jwks.lock() = Some(Cached {
            value: keys.clone(),
            fetched: Instant::now(),
        });
        Ok(keys)
    }

    /// Trades the authorization code (with the PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_url: &str,
    ) -> Result<TokenResponse, SsoError> {
        let metadata = self.metadata().await?;
        let secret = self.client_secret.as_deref().unwrap_or_default();
        // Built whole before any await: the serializer is not `Send`.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_url)
                .append_pair("code_verifier", verifier);
            match self.auth {
                TokenEndpointAuth::ClientSecretBasic => {}
                TokenEndpointAuth::ClientSecretPost => {
                    form.append_pair("client_id", &self.client_id)
                        .append_pair("client_secret", secret);
                }
                TokenEndpointAuth::None => {
                    form.append_pair("client_id", &self.client_id);
                }
            }
            form.finish()
        };
        let mut request = self
            .http
            .post(&metadata.token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        if self.auth == TokenEndpointAuth::ClientSecretBasic {
            // RFC 6749 §2.3.1: both parts form-encoded before they are joined.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(encode(&self.client_id), Some(encode(secret)));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable("token endpoint", e))?;
        let status = response.status();
        let body = read_limited(response)
            .await
            .map_err(|e| unreachable("token endpoint", e))?;
        if !status.is_success() {
            // The provider's error code and description (RFC 6749 §5.2), never our secret.
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(SsoError::new(
                SsoFailure::ProviderError,
                format!(
                    "the token endpoint answered {status}: {} {}",
                    error["error"].as_str().unwrap_or("(no error code)"),
                    error["error_description"].as_str().unwrap_or("")
                ),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            SsoError::new(
                SsoFailure::ProviderError,
                format!("the token endpoint's answer is not a token response: {e}"),
            )
        })
    }

    /// The userinfo claims, for claims the ID token leaves out. `None` when the provider
    /// has no userinfo endpoint.
    pub async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, SsoError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = &metadata.userinfo_endpoint else {
            return Ok(None);
        };
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable("userinfo endpoint", e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SsoError::new(
                SsoFailure::ProviderError,
                format!("the userinfo endpoint answered {status}"),
            ));
        }
        let body = read_limited(response)
            .await
            .map_err(|e| unreachable("userinfo endpoint", e))?;
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            SsoError::new(
                SsoFailure::ProviderError,
                format!(
                    "the userinfo answer is not a JSON object (a signed one is not supported): {e}"
                ),
            )
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, what: &str, url: &str) -> Result<T, SsoError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(what, format!("{url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SsoError::new(
                SsoFailure::ProviderUnreachable,
                format!("{what}: {url} answered {status}"),
            ));
        }
        let body = read_limited(response)
            .await
            .map_err(|e| unreachable(what, format!("{url}: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| {
            SsoError::new(
                SsoFailure::ProviderError,
                format!("{what}: {url} did not answer the expected JSON: {e}"),
            )
        })
    }
}

/// The signing key named `kid`; without one, the only signing key there is.
fn pick(keys: &JwkSet, kid: Option<&str>) -> Result<Option<Jwk>, SsoError> {
    let signing = |k: &&Jwk| {
        k.common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
    };
    match kid {
        Some(kid) => Ok(keys
            .keys
            .iter()
            .filter(signing)
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned()),
        None => {
            let mut candidates = keys.keys.iter().filter(signing);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Ok(Some(only.clone())),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(SsoError::new(
                    SsoFailure::InvalidToken,
                    "the ID token names no key (kid) and the provider publishes several",
                )),
            }
        }
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("answer larger than {MAX_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
