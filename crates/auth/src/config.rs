//! Authentication settings (`[auth]`, `SWITCHYARD__AUTH__*`).

use serde::{Deserialize, Serialize};

use crate::oidc::config::OidcConfig;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Lifetime of access tokens (JWT).
    pub access_ttl_s: u64,
    /// Lifetime of a session's refresh token, renewed on each refresh.
    pub refresh_ttl_s: u64,
    /// HMAC secret for access tokens. Unset: generated once and kept in the database.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<String>,
    /// Earlier secrets, still accepted for verification (rotation of a configured secret).
    #[serde(skip_serializing)]
    pub jwt_previous_secrets: Vec<String>,
    /// For this long after a refresh, presenting the refresh token it spent again (a
    /// concurrent or retried request) gets the same new token instead of revoking the
    /// session. Keep it above clients' request timeouts; 0 turns the grace off.
    pub refresh_reuse_grace_s: u64,
    /// Failed logins allowed per account and client address within `login_window_s`
    /// before doubling lockouts of that pair start.
    pub login_max_failures: u32,
    /// Failed logins allowed per client address, over all accounts (credential stuffing).
    pub login_address_max_failures: u32,
    /// Failed logins allowed per account, over all addresses (distributed guessing). The
    /// lock this leads to spares addresses known for the account.
    pub login_account_max_failures: u32,
    /// How long failed logins are remembered.
    pub login_window_s: u64,
    /// An address that logged in to an account is known for it this long (renewed on each
    /// login): the address and account limits never lock it out.
    pub login_known_address_days: u64,
    /// Email and password logins. Off: only single sign-on (and `break_glass_email`).
    pub password_login: bool,
    /// With `password_login = false`, this one account may still log in with its
    /// password (an administrator's way in when the identity provider is down).
    pub break_glass_email: Option<String>,
    /// Single sign-on with an OpenID Connect provider (docs/sso.md). Unset: off.
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 86_400,
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            refresh_reuse_grace_s: 30,
            login_max_failures: 5,
            login_address_max_failures: 20,
            login_account_max_failures: 50,
            login_window_s: 3_600,
            login_known_address_days: 30,
            password_login: true,
            break_glass_email: None,
            oidc: None,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("access_ttl_s", &self.access_ttl_s)
            .field("refresh_ttl_s", &self.refresh_ttl_s)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("refresh_reuse_grace_s", &self.refresh_reuse_grace_s)
            .field("login_max_failures", &self.login_max_failures)
            .field(
                "login_address_max_failures",
                &self.login_address_max_failures,
            )
            .field(
                "login_account_max_failures",
                &self.login_account_max_failures,
            )
            .field("login_window_s", &self.login_window_s)
            .field("login_known_address_days", &self.login_known_address_days)
            .field("password_login", &self.password_login)
            .field("break_glass_email", &self.break_glass_email)
            .field("oidc", &self.oidc)
            .finish()
    }
}

impl AuthConfig {
    /// Checks the settings that can be wrong in ways serde does not see.
    pub fn validate(&self) -> switchyard_core::Result<()> {
        use switchyard_core::Error;
        if let Some(email) = &self.break_glass_email
            && switchyard_core::auth::normalize_email(email).is_none()
        {
            return Err(Error::invalid_parameter(format!(
                "auth.break_glass_email must be an email address, got {email:?}"
            )));
        }
        if !self.password_login && self.oidc.is_none() {
            return Err(Error::invalid_parameter(
                "auth.password_login = false needs single sign-on ([auth.oidc]): otherwise nobody could sign in",
            ));
        }
        if let Some(oidc) = &self.oidc {
            oidc.validate()?;
        }
        Ok(())
    }
}
