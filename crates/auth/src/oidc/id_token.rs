//! Verifying an ID token (OpenID Connect Core §3.1.3.7): the signature with the
//! provider's published key, then issuer, audience, authorized party, expiry, issue time
//! and nonce. Only asymmetric algorithms the provider announces are accepted: `none`
//! cannot even be parsed as an algorithm, and an HMAC algorithm (which would make the
//! provider's *public* key a shared secret anyone could sign with) is never allowed.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::provider::Provider;
use super::{SsoError, SsoFailure};

/// Clock skew allowed on `exp` and `iat`, in seconds.
pub const LEEWAY_S: u64 = 60;

/// The claims of a verified ID token.
#[derive(Clone, Debug, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// Every claim, for the role claim (which may be nested).
    #[serde(flatten)]
    pub all: Map<String, Value>,
}

/// What the token must say.
pub struct Expected<'a> {
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the epoch.
    pub now: u64,
}

fn invalid(message: impl Into<String>) -> SsoError {
    SsoError::new(SsoFailure::InvalidToken, message)
}

/// The asymmetric algorithms this verifier accepts, of those jsonwebtoken implements.
fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

pub async fn verify(
    provider: &Provider,
    token: &str,
    expected: &Expected<'_>,
) -> Result<IdClaims, SsoError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| {
        invalid(format!(
            "the ID token's header is not acceptable ({e}); unsigned (alg none) tokens are refused"
        ))
    })?;
    let alg = header.alg;
    if !asymmetric(alg) {
        return Err(invalid(format!(
            "the ID token is signed with {alg:?}, a shared-secret algorithm; only the provider's published keys are accepted"
        )));
    }
    let metadata = provider.metadata().await?;
    let announced = if metadata.id_token_signing_alg_values_supported.is_empty() {
        vec!["RS256".to_owned()]
    } else {
        metadata.id_token_signing_alg_values_supported.clone()
    };
    let alg_name = format!("{alg:?}");
    if !announced.contains(&alg_name) {
        return Err(invalid(format!(
            "the ID token is signed with {alg_name}, which the provider does not announce (id_token_signing_alg_values_supported: {announced:?})"
        )));
    }
    let jwk = provider.signing_key(header.kid.as_deref()).await?;
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg != jsonwebtoken::jwk::KeyAlgorithm::from(alg)
    {
        return Err(invalid(format!(
            "the ID token says {alg_name} but its key {:?} is for {key_alg:?}",
            jwk.common.key_id
        )));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| {
        invalid(format!(
            "the provider's key {:?} is unusable: {e}",
            jwk.common.key_id
        ))
    })?;
    if key.family() != alg.family() {
        return Err(invalid(format!(
            "the ID token says {alg_name} but its key {:?} is of another kind",
            jwk.common.key_id
        )));
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[&metadata.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_S;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<IdClaims>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        let why = match e.kind() {
            ErrorKind::InvalidSignature => "its signature does not verify".to_owned(),
            ErrorKind::ExpiredSignature => "it has expired (exp)".to_owned(),
            ErrorKind::InvalidAudience => format!(
                "its audience (aud) is not this client ({})",
                expected.client_id
            ),
            ErrorKind::InvalidIssuer => format!("its issuer (iss) is not {}", metadata.issuer),
            ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".to_owned(),
            ErrorKind::MissingRequiredClaim(c) => format!("it has no {c} claim"),
            _ => e.to_string(),
        };
        invalid(format!("the ID token is refused: {why}"))
    })?;
    let claims = data.claims;
    // aud was checked to contain this client; with other audiences besides, the
    // authorized party must be named and be this client (Core §3.1.3.7 items 4 and 5).
    let audiences = match claims.all.get("aud") {
        Some(Value::Array(list)) => list.len(),
        _ => 1,
    };
    match claims.all.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        Some(other) => {
            return Err(invalid(format!(
                "the ID token was issued to another party (azp {other})"
            )));
        }
        None if audiences > 1 => {
            return Err(invalid(
                "the ID token has several audiences and names no authorized party (azp)",
            ));
        }
        None => {}
    }
    match claims.all.get("iat").and_then(Value::as_u64) {
        Some(iat) if iat <= expected.now + LEEWAY_S => {}
        Some(_) => return Err(invalid("the ID token was issued in the future (iat)")),
        None => return Err(invalid("the ID token has no iat claim")),
    }
    match claims.all.get("nonce").and_then(Value::as_str) {
        Some(nonce) if constant_time_eq(nonce.as_bytes(), expected.nonce.as_bytes()) => {}
        Some(_) => {
            return Err(invalid(
                "the ID token's nonce is not the one this login sent (a replayed token?)",
            ));
        }
        None => return Err(invalid("the ID token has no nonce")),
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err(invalid(
            "the ID token's subject (sub) is empty or longer than 255 characters",
        ));
    }
    Ok(claims)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
