//! Authentication settings (`[auth]`, `SWITCHYARD__AUTH__*`).

use serde::{Deserialize, Serialize};

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
            .finish()
    }
}
