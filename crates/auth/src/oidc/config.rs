//! Single sign-on settings (`[auth.oidc]`, `SWITCHYARD__AUTH__OIDC__*`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_core::auth::Role;
use switchyard_core::{Error, Result};

/// The environment variable the client secret is read from unless `client_secret_env`
/// names another.
pub const DEFAULT_CLIENT_SECRET_ENV: &str = "SWITCHYARD_OIDC_CLIENT_SECRET";
/// The callback's path on the server; `redirect_url` must end with it.
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";
/// Longest `name`, `client_id` and `role_claim`, most `role_map` entries and scopes.
const MAX_TEXT: usize = 256;
const MAX_ENTRIES: usize = 256;

/// How the client authenticates to the provider's token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the client id and secret (the OpenID Connect default).
    ClientSecretBasic,
    /// The client id and secret in the form body.
    ClientSecretPost,
    /// A public client: PKCE only, no secret.
    None,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The environment variable holding the client secret (the secret itself is never
    /// in the configuration, a log or an answer).
    pub client_secret_env: String,
    /// Filled in from `client_secret_env` when the configuration is loaded.
    #[serde(skip)]
    pub client_secret: Option<String>,
    pub token_endpoint_auth: TokenEndpointAuth,
    /// Scopes asked for; must include `openid`.
    pub scopes: Vec<String>,
    /// Shown on the login page as "Sign in with <name>".
    pub name: String,
    /// The public URL of `/api/v1/auth/oidc/callback`, registered at the provider.
    pub redirect_url: String,
    /// The claim naming the user's groups or roles (a dotted path such as
    /// `realm_access.roles` reaches into objects; a string or a list of strings).
    pub role_claim: Option<String>,
    /// Claim value → role. A user with several mapped values gets the highest role.
    pub role_map: BTreeMap<String, Role>,
    /// The role of a user none of whose claim values is mapped. Unset: such users are refused.
    pub default_role: Option<Role>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: String::new(),
            client_id: String::new(),
            client_secret_env: DEFAULT_CLIENT_SECRET_ENV.into(),
            client_secret: None,
            token_endpoint_auth: TokenEndpointAuth::ClientSecretBasic,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            name: "SSO".into(),
            redirect_url: String::new(),
            role_claim: None,
            role_map: BTreeMap::new(),
            default_role: None,
        }
    }
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret_env", &self.client_secret_env)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token_endpoint_auth", &self.token_endpoint_auth)
            .field("scopes", &self.scopes)
            .field("name", &self.name)
            .field("redirect_url", &self.redirect_url)
            .field("role_claim", &self.role_claim)
            .field("role_map", &self.role_map)
            .field("default_role", &self.default_role)
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::invalid_parameter(message)
}

/// Plain HTTP only to this machine (a provider in a test or on the same host): anything
/// else would carry codes and tokens in the clear.
fn check_url(key: &str, value: &str) -> Result<url::Url> {
    let url = url::Url::parse(value).map_err(|e| {
        invalid(format!(
            "auth.oidc.{key} must be an absolute http(s) URL, got {value:?} ({e})"
        ))
    })?;
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(format!(
                "auth.oidc.{key} must use https (plain http only for localhost), got {value:?}"
            )));
        }
        _ => {
            return Err(invalid(format!(
                "auth.oidc.{key} must be an http(s) URL, got {value:?}"
            )));
        }
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "auth.oidc.{key} must name a host and no credentials, got {value:?}"
        )));
    }
    Ok(url)
}

impl OidcConfig {
    /// Checks every setting, with an error naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() {
            return Err(invalid(
                "auth.oidc.issuer is required (the provider's issuer URL, e.g. https://login.example.com/realms/main)".into(),
            ));
        }
        let issuer = check_url("issuer", &self.issuer)?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(invalid(format!(
                "auth.oidc.issuer must not have a query or fragment, got {:?}",
                self.issuer
            )));
        }
        if self.client_id.trim().is_empty() || self.client_id.len() > MAX_TEXT {
            return Err(invalid(format!(
                "auth.oidc.client_id is required (at most {MAX_TEXT} characters)"
            )));
        }
        if self.token_endpoint_auth != TokenEndpointAuth::None
            && self.client_secret.as_deref().is_none_or(str::is_empty)
        {
            return Err(invalid(format!(
                "the OpenID Connect client secret is not set: put it in the environment variable {} (auth.oidc.client_secret_env), or set auth.oidc.token_endpoint_auth = \"none\" for a public client",
                self.client_secret_env
            )));
        }
        if self.redirect_url.is_empty() {
            return Err(invalid(format!(
                "auth.oidc.redirect_url is required: the public URL of this server's callback, e.g. https://switchyard.example.com{CALLBACK_PATH}"
            )));
        }
        let redirect = check_url("redirect_url", &self.redirect_url)?;
        if redirect.path() != CALLBACK_PATH || redirect.query().is_some() {
            return Err(invalid(format!(
                "auth.oidc.redirect_url must be this server's public origin followed by {CALLBACK_PATH}, got {:?}",
                self.redirect_url
            )));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(invalid(format!(
                "auth.oidc.scopes must include \"openid\", got {:?}",
                self.scopes
            )));
        }
        if self.scopes.len() > MAX_ENTRIES
            || self.scopes.iter().any(|s| {
                s.is_empty()
                    || s.len() > MAX_TEXT
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            })
        {
            return Err(invalid(
                "auth.oidc.scopes must be non-empty words without spaces or quotes".into(),
            ));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(invalid(
                "auth.oidc.name must have 1 to 64 characters (shown as \"Sign in with <name>\")"
                    .into(),
            ));
        }
        if let Some(claim) = &self.role_claim
            && (claim.is_empty() || claim.len() > MAX_TEXT || claim.split('.').any(str::is_empty))
        {
            return Err(invalid(format!(
                "auth.oidc.role_claim must be a claim name or a dotted path such as realm_access.roles, got {claim:?}"
            )));
        }
        if self.role_map.len() > MAX_ENTRIES {
            return Err(invalid(format!(
                "auth.oidc.role_map has more than {MAX_ENTRIES} entries"
            )));
        }
        if !self.role_map.is_empty() && self.role_claim.is_none() {
            return Err(invalid(
                "auth.oidc.role_map needs auth.oidc.role_claim (the claim whose values it maps)"
                    .into(),
            ));
        }
        if self.role_map.is_empty() && self.default_role.is_none() {
            return Err(invalid(
                "auth.oidc needs a role_claim with a role_map, or a default_role: otherwise nobody could sign in".into(),
            ));
        }
        Ok(())
    }

    /// The issuer as the provider writes it in `iss` (no trailing slash added or removed).
    pub(crate) fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> OidcConfig {
        OidcConfig {
            issuer: "https://login.example.com".into(),
            client_id: "switchyard".into(),
            client_secret: Some("s3cret".into()),
            redirect_url: format!("https://sy.example.com{CALLBACK_PATH}"),
            default_role: Some(Role::Viewer),
            ..OidcConfig::default()
        }
    }

    #[test]
    fn a_complete_configuration_passes() {
        valid().validate().unwrap();
        let local = OidcConfig {
            issuer: "http://127.0.0.1:9400".into(),
            redirect_url: format!("http://localhost:8080{CALLBACK_PATH}"),
            ..valid()
        };
        local.validate().unwrap();
    }

    #[test]
    fn each_mistake_is_named() {
        let cases: Vec<(OidcConfig, &str)> = vec![
            (
                OidcConfig {
                    issuer: String::new(),
                    ..valid()
                },
                "auth.oidc.issuer is required",
            ),
            (
                OidcConfig {
                    issuer: "http://login.example.com".into(),
                    ..valid()
                },
                "must use https",
            ),
            (
                OidcConfig {
                    issuer: "ftp://x".into(),
                    ..valid()
                },
                "auth.oidc.issuer",
            ),
            (
                OidcConfig {
                    client_id: " ".into(),
                    ..valid()
                },
                "auth.oidc.client_id",
            ),
            (
                OidcConfig {
                    client_secret: None,
                    ..valid()
                },
                "SWITCHYARD_OIDC_CLIENT_SECRET",
            ),
            (
                OidcConfig {
                    redirect_url: String::new(),
                    ..valid()
                },
                "auth.oidc.redirect_url is required",
            ),
            (
                OidcConfig {
                    redirect_url: "https://sy.example.com/callback".into(),
                    ..valid()
                },
                CALLBACK_PATH,
            ),
            (
                OidcConfig {
                    scopes: vec!["email".into()],
                    ..valid()
                },
                "\"openid\"",
            ),
            (
                OidcConfig {
                    scopes: vec!["openid".into(), "a b".into()],
                    ..valid()
                },
                "auth.oidc.scopes",
            ),
            (
                OidcConfig {
                    name: String::new(),
                    ..valid()
                },
                "auth.oidc.name",
            ),
            (
                OidcConfig {
                    role_claim: Some("a..b".into()),
                    ..valid()
                },
                "auth.oidc.role_claim",
            ),
            (
                OidcConfig {
                    role_map: [("ops".to_owned(), Role::Operator)].into(),
                    ..valid()
                },
                "needs auth.oidc.role_claim",
            ),
            (
                OidcConfig {
                    default_role: None,
                    ..valid()
                },
                "nobody could sign in",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().unwrap_err();
            assert!(
                err.message.contains(expected),
                "{expected:?} in {:?}",
                err.message
            );
        }
        let public = OidcConfig {
            client_secret: None,
            token_endpoint_auth: TokenEndpointAuth::None,
            ..valid()
        };
        public.validate().unwrap();
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", valid());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
