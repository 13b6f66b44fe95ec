//! Login throttling that keeps guessing slow without letting anyone lock an account's
//! owner out.
//!
//! Failures are counted in the cache (so every API server shares them) in three scopes;
//! past its free allowance within `auth.login_window_s`, each further failure in a scope
//! locks it for twice as long as the previous lock — 1 s, 2 s, 4 s … up to an hour:
//!
//! - the account *and* client address (`auth.login_max_failures`): one guesser on one
//!   address. Only someone on that address can trip it.
//! - the address, over all accounts (`auth.login_address_max_failures`): credential
//!   stuffing.
//! - the account, over all addresses (`auth.login_account_max_failures`): guessing
//!   spread over many addresses.
//!
//! A successful login makes its address *known* for the account for
//! `auth.login_known_address_days`. The address and account locks never apply to a known
//! address, so attackers elsewhere cannot lock the owner out where they usually log in;
//! only the pair's own lock does. Accounts are named by the SHA-256 of the normalised
//! email, so an unknown email costs the same cache operations as a known one.

use std::net::IpAddr;
use std::time::Duration;

use switchyard_core::cache::Cache;
use switchyard_core::error::ErrorCode;
use switchyard_core::{Error, Result, Timestamp};

use super::sha256_hex;
use crate::config::AuthConfig;

pub const MAX_LOCK_S: u64 = 3_600;

/// One login attempt: which account, from where.
pub struct Attempt {
    account: String,
    address: String,
}

/// The address a client is throttled by: IPv4 as it is, IPv6 by its /64 (one
/// subscriber's network; the rest of the address is theirs to vary at will).
pub fn address_scope(ip: Option<&str>) -> String {
    let Some(ip) = ip else {
        return "unknown".into();
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => ip.to_owned(),
    }
}

impl Attempt {
    /// `email` normalised (or empty when it cannot be an address).
    pub fn new(email: &str, ip: Option<&str>) -> Self {
        Attempt {
            account: sha256_hex(email),
            address: address_scope(ip),
        }
    }

    fn known_key(&self) -> String {
        format!("login:known:{}:{}", self.account, self.address)
    }

    fn scopes(&self, config: &AuthConfig) -> [Scope; 3] {
        [
            Scope {
                key: format!("pair:{}:{}", self.account, self.address),
                allowance: config.login_max_failures,
                spares_known: false,
            },
            Scope {
                key: format!("ip:{}", self.address),
                allowance: config.login_address_max_failures,
                spares_known: true,
            },
            Scope {
                key: format!("account:{}", self.account),
                allowance: config.login_account_max_failures,
                spares_known: true,
            },
        ]
    }
}

struct Scope {
    key: String,
    allowance: u32,
    /// Whether its lock lets addresses known for the account through.
    spares_known: bool,
}

/// The lock after `failures` failures with `allowance` free ones: `None`, or seconds.
pub fn lock_seconds(failures: u64, allowance: u32) -> Option<u64> {
    let over = failures
        .checked_sub(u64::from(allowance))
        .filter(|n| *n > 0)?;
    Some(
        1u64.checked_shl((over - 1).min(63) as u32)
            .unwrap_or(u64::MAX)
            .min(MAX_LOCK_S),
    )
}

/// Milliseconds left on a scope's lock (0: not locked). Cache failures do not lock.
async fn lock_remaining(cache: &dyn Cache, key: &str, now: Timestamp) -> u64 {
    let Some(until) = cache.get(&format!("login:lock:{key}")).await.ok().flatten() else {
        return 0;
    };
    let until = std::str::from_utf8(&until)
        .ok()
        .and_then(|u| u.parse::<i64>().ok())
        .unwrap_or(0);
    Timestamp::from_millis(until).since(now)
}

/// Refuses while a scope that applies to this attempt is locked, with the longest wait.
pub async fn check(cache: &dyn Cache, config: &AuthConfig, attempt: &Attempt) -> Result<()> {
    let now = Timestamp::now();
    let known = matches!(cache.get(&attempt.known_key()).await, Ok(Some(_)));
    let mut wait = 0;
    // Every lock is read whether or not it applies, so a known address costs the same.
    for scope in attempt.scopes(config) {
        let remaining = lock_remaining(cache, &scope.key, now).await;
        if !(known && scope.spares_known) {
            wait = wait.max(remaining);
        }
    }
    if wait > 0 {
        return Err(Error::new(
            ErrorCode::RateLimited,
            "too many failed logins; try again later",
        )
        .with_retry_after(wait.div_ceil(1_000)));
    }
    Ok(())
}

/// Counts a failure in every scope, locking those past their allowance.
pub async fn fail(cache: &dyn Cache, config: &AuthConfig, attempt: &Attempt) {
    let window = Duration::from_secs(config.login_window_s.max(1));
    for scope in attempt.scopes(config) {
        let failures = match cache
            .incr(&format!("login:fail:{}", scope.key), 1, window)
            .await
        {
            Ok(n) => u64::try_from(n).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "could not count a failed login");
                continue;
            }
        };
        if let Some(secs) = lock_seconds(failures, scope.allowance) {
            let until = Timestamp::now().plus_ms(secs * 1_000).millis().to_string();
            if let Err(e) = cache
                .set(
                    &format!("login:lock:{}", scope.key),
                    until.as_bytes(),
                    Duration::from_secs(secs),
                )
                .await
            {
                tracing::warn!(error = %e, "could not record a login lockout");
            }
        }
    }
}

/// A successful login clears its pair's failures and marks the address known for the
/// account. The address and account counts stay: a login of the owner must not hand a
/// distributed guesser a fresh allowance.
pub async fn succeed(cache: &dyn Cache, config: &AuthConfig, attempt: &Attempt) {
    let [pair, ..] = attempt.scopes(config);
    let _ = cache.delete(&format!("login:fail:{}", pair.key)).await;
    let _ = cache.delete(&format!("login:lock:{}", pair.key)).await;
    let days = Duration::from_secs(config.login_known_address_days.saturating_mul(86_400));
    if !days.is_zero()
        && let Err(e) = cache.set(&attempt.known_key(), b"1", days).await
    {
        tracing::warn!(error = %e, "could not remember a login's address");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_up_to_an_hour() {
        let locks: Vec<Option<u64>> = (1..=8).map(|n| lock_seconds(n, 5)).collect();
        assert_eq!(
            locks,
            vec![None, None, None, None, None, Some(1), Some(2), Some(4)]
        );
        assert_eq!(lock_seconds(100, 5), Some(MAX_LOCK_S));
        assert_eq!(lock_seconds(1, 0), Some(1));
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_network() {
        assert_eq!(address_scope(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(address_scope(Some("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(
            address_scope(Some("2001:db8:1:2:aaaa::1")),
            address_scope(Some("2001:db8:1:2:bbbb::2")),
        );
        assert_eq!(address_scope(Some("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_ne!(
            address_scope(Some("2001:db8:1:2::1")),
            address_scope(Some("2001:db8:1:3::1"))
        );
        assert_eq!(address_scope(None), "unknown");
    }

    /// The figures docs/security.md gives: guesses one (account, address) pair gets in
    /// its first hour with the default allowance of 5, waiting out each lock.
    #[test]
    fn a_pair_gets_seventeen_guesses_in_its_first_hour() {
        let (mut t, mut guesses, mut n) = (0u64, 0u64, 0u64);
        while t < 3_600 {
            guesses += 1;
            n += 1;
            t += lock_seconds(n, 5).unwrap_or(0);
        }
        assert_eq!(guesses, 17);
        let (mut t, mut guesses, mut n) = (0u64, 0u64, 0u64);
        while t < 3_600 {
            guesses += 1;
            n += 1;
            t += lock_seconds(n, 50).unwrap_or(0);
        }
        assert_eq!(guesses, 62, "an account, over all addresses, with 50");
    }
}
