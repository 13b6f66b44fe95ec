//! Retry policy and exponential backoff with full jitter.
//!
//! After the n-th failed attempt of a run (n ≥ 1) the next attempt waits
//! `random(0, min(cap, base · 2^(n-1)))` milliseconds — the "full jitter" scheme, which
//! spreads retries of many failing tasks evenly instead of letting them stampede.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};

pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_BASE_MS: u64 = 200;
pub const DEFAULT_CAP_MS: u64 = 30_000;
/// Upper bounds a client may configure; they keep the arithmetic and the queue sane.
pub const MAX_ATTEMPTS_LIMIT: u32 = 1_000;
pub const MAX_BACKOFF_MS: u64 = 7 * 24 * 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included. 1 means "never retry".
    pub max_attempts: u32,
    /// Backoff base in milliseconds.
    pub base_ms: u64,
    /// Backoff cap in milliseconds.
    pub cap_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_ms: DEFAULT_BASE_MS,
            cap_ms: DEFAULT_CAP_MS,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::new(ErrorCode::InvalidAgent, m));
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS_LIMIT {
            return bad(format!(
                "retry.max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {}",
                self.max_attempts
            ));
        }
        if self.base_ms == 0 || self.base_ms > MAX_BACKOFF_MS {
            return bad(format!(
                "retry.base_ms must be between 1 and {MAX_BACKOFF_MS}, got {}",
                self.base_ms
            ));
        }
        if self.cap_ms < self.base_ms || self.cap_ms > MAX_BACKOFF_MS {
            return bad(format!(
                "retry.cap_ms must be between base_ms ({}) and {MAX_BACKOFF_MS}, got {}",
                self.base_ms, self.cap_ms
            ));
        }
        Ok(())
    }

    /// The ceiling of the jittered delay after `failed_attempts` failures (≥ 1).
    pub fn ceiling_ms(&self, failed_attempts: u32) -> u64 {
        let exp = failed_attempts.saturating_sub(1).min(63);
        let grown = self
            .base_ms
            .checked_shl(exp)
            .filter(|v| v >> exp == self.base_ms);
        grown.unwrap_or(u64::MAX).min(self.cap_ms)
    }

    /// The full-jitter delay after `failed_attempts` failures, using `unit` ∈ [0, 1) as the
    /// random draw (so callers and tests control the randomness).
    pub fn delay_ms(&self, failed_attempts: u32, unit: f64) -> u64 {
        let ceiling = self.ceiling_ms(failed_attempts);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // ceiling ≤ MAX_BACKOFF_MS < 2^53, so the float round trip is exact enough.
        ((ceiling as f64) * unit).floor().min(ceiling as f64) as u64
    }

    /// A delay drawn from the thread-local RNG.
    pub fn random_delay_ms(&self, failed_attempts: u32) -> u64 {
        self.delay_ms(failed_attempts, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_until_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_ms: 100,
            cap_ms: 1_000,
        };
        let ceilings: Vec<u64> = (1..=6).map(|n| p.ceiling_ms(n)).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn defaults_match_the_contract() {
        let p = RetryPolicy::default();
        assert_eq!((p.max_attempts, p.base_ms, p.cap_ms), (5, 200, 30_000));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn invalid_policies_are_rejected_with_the_field_named() {
        let e = RetryPolicy {
            max_attempts: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.message.contains("max_attempts"));
        let e = RetryPolicy {
            cap_ms: 10,
            base_ms: 100,
            max_attempts: 3,
        }
        .validate()
        .unwrap_err();
        assert!(e.message.contains("cap_ms"));
    }

    proptest! {
        #[test]
        fn delay_is_within_zero_and_the_capped_ceiling(
            base in 1u64..100_000, extra in 0u64..1_000_000, n in 1u32..200, unit in 0.0f64..1.0
        ) {
            let p = RetryPolicy { max_attempts: 5, base_ms: base, cap_ms: base + extra };
            let d = p.delay_ms(n, unit);
            prop_assert!(d <= p.cap_ms);
            prop_assert!(d <= p.ceiling_ms(n));
            let exact = base.saturating_mul(1u64.checked_shl(n - 1).unwrap_or(u64::MAX));
            prop_assert_eq!(p.ceiling_ms(n), exact.min(p.cap_ms));
        }

        #[test]
        fn ceiling_never_shrinks_as_failures_grow(base in 1u64..10_000, cap_extra in 0u64..10_000_000, n in 1u32..100) {
            let p = RetryPolicy { max_attempts: 5, base_ms: base, cap_ms: base + cap_extra };
            prop_assert!(p.ceiling_ms(n + 1) >= p.ceiling_ms(n));
        }

        #[test]
        fn delay_is_monotonic_in_the_random_draw(base in 1u64..10_000, n in 1u32..20, a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let p = RetryPolicy { max_attempts: 5, base_ms: base, cap_ms: 60_000.max(base) };
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(p.delay_ms(n, lo) <= p.delay_ms(n, hi));
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_ms: 1_000,
            cap_ms: 1_000,
        };
        let draws: Vec<u64> = (0..2_000).map(|_| p.random_delay_ms(1)).collect();
        assert!(draws.iter().all(|d| *d <= 1_000));
        assert!(
            draws.iter().any(|d| *d < 100),
            "full jitter reaches near zero"
        );
        assert!(
            draws.iter().any(|d| *d > 900),
            "full jitter reaches near the ceiling"
        );
    }
}
