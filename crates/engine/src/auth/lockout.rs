//! Login throttling with exponential lockout, per account and per client address.
//!
//! Failures are counted in the cache (so every API server shares them). Past the free
//! allowance, each further failure locks the account (or address) for twice as long as
//! the previous one — 1 s, 2 s, 4 s … up to an hour. A success clears the account's count.

use std::time::Duration;

use switchyard_core::cache::Cache;
use switchyard_core::error::ErrorCode;
use switchyard_core::{Error, Result, Timestamp};

use super::sha256_hex;
use crate::config::AuthConfig;

pub const MAX_LOCK_S: u64 = 3_600;
/// Addresses get more room than accounts: many people may share one (NAT, proxies).
const IP_ALLOWANCE_FACTOR: u32 = 4;

pub struct Scope {
    key: String,
    allowance: u32,
}

pub fn scopes(config: &AuthConfig, email: &str, ip: Option<&str>) -> Vec<Scope> {
    let mut out = vec![Scope {
        key: format!("account:{}", sha256_hex(email)),
        allowance: config.login_max_failures,
    }];
    if let Some(ip) = ip {
        out.push(Scope {
            key: format!("ip:{ip}"),
            allowance: config
                .login_max_failures
                .saturating_mul(IP_ALLOWANCE_FACTOR),
        });
    }
    out
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

/// Refuses while any scope is locked.
pub async fn check(cache: &dyn Cache, scopes: &[Scope]) -> Result<()> {
    let now = Timestamp::now();
    for s in scopes {
        if let Some(until) = cache
            .get(&format!("login:lock:{}", s.key))
            .await
            .ok()
            .flatten()
        {
            let until = std::str::from_utf8(&until)
                .ok()
                .and_then(|u| u.parse::<i64>().ok())
                .unwrap_or(0);
            let remaining = Timestamp::from_millis(until).since(now);
            if remaining > 0 {
                return Err(Error::new(
                    ErrorCode::RateLimited,
                    "too many failed logins; try again later",
                )
                .with_retry_after(remaining.div_ceil(1_000)));
            }
        }
    }
    Ok(())
}

/// Counts a failure in every scope, locking those past their allowance.
pub async fn fail(cache: &dyn Cache, config: &AuthConfig, scopes: &[Scope]) {
    let window = Duration::from_secs(config.login_window_s.max(1));
    for s in scopes {
        let failures = match cache
            .incr(&format!("login:fail:{}", s.key), 1, window)
            .await
        {
            Ok(n) => u64::try_from(n).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "could not count a failed login");
                continue;
            }
        };
        if let Some(secs) = lock_seconds(failures, s.allowance) {
            let until = Timestamp::now().plus_ms(secs * 1_000).millis().to_string();
            if let Err(e) = cache
                .set(
                    &format!("login:lock:{}", s.key),
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

/// A successful login clears the account's failures (not the address's).
pub async fn succeed(cache: &dyn Cache, scopes: &[Scope]) {
    if let Some(account) = scopes.first() {
        let _ = cache.delete(&format!("login:fail:{}", account.key)).await;
        let _ = cache.delete(&format!("login:lock:{}", account.key)).await;
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
}
