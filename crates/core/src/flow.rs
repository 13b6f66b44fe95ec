//! Flow control: which tasks share a limit, how fast an agent's tasks may start, and the
//! key dispatch takes turns by.
//!
//! A task may carry a *flow key* (its `concurrency_key`): given at submission, or read
//! from its input by the agent's `concurrency_key` (or `rate_limit.key`) JSON pointer.
//! Tasks of one key share the agent's `concurrency_per_key` and per-key rate limit.
//! Dispatch takes turns between *fair keys* within a priority level: the flow key when
//! there is one, else the submitting user, so one key's backlog never keeps another
//! key's task waiting for more than one dispatch round.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::UserId;
use crate::time::Timestamp;

/// The longest flow key, in bytes.
pub const MAX_FLOW_KEY_LEN: usize = 256;
/// The longest JSON pointer an agent may name a key by.
pub const MAX_POINTER_LEN: usize = 256;
/// The longest rate-limit period: a week.
pub const MAX_PERIOD_S: u64 = 7 * 24 * 3_600;

/// How fast an agent's tasks may start, across the whole cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// At most this many starts…
    pub limit: u32,
    /// …per this many seconds. Starts are spread evenly: one every `period_s / limit`
    /// seconds, with a burst of at most 100 ms worth of starts.
    pub period_s: u64,
    /// A JSON pointer into the input: the limit holds per value instead of per agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl RateLimit {
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 {
            return Err(invalid_agent("rate_limit.limit must be at least 1"));
        }
        if self.period_s == 0 || self.period_s > MAX_PERIOD_S {
            return Err(invalid_agent(format!(
                "rate_limit.period_s must be between 1 and {MAX_PERIOD_S}"
            )));
        }
        if let Some(key) = &self.key {
            check_pointer("rate_limit.key", key)?;
        }
        Ok(())
    }

    /// Milliseconds between two starts (the GCRA emission interval), at least 1 µs.
    pub fn interval_us(&self) -> u64 {
        (self.period_s * 1_000_000 / u64::from(self.limit)).max(1)
    }

    /// How many starts may come at once beyond the steady pace: 100 ms worth, at most
    /// the whole limit.
    pub fn burst_us(&self) -> u64 {
        let period_us = self.period_s * 1_000_000;
        BURST_WINDOW_US.min(period_us.saturating_sub(self.interval_us()))
    }
}

const BURST_WINDOW_US: u64 = 100_000;

fn invalid_agent(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidAgent, message)
}

/// `what` must be a JSON pointer (RFC 6901) naming a member of the input.
pub fn check_pointer(what: &str, pointer: &str) -> Result<()> {
    if !pointer.starts_with('/') || pointer.len() > MAX_POINTER_LEN {
        return Err(invalid_agent(format!(
            "{what} must be a JSON pointer into the input such as \"/customer_id\" (at most {MAX_POINTER_LEN} characters), got {pointer:?}"
        )));
    }
    Ok(())
}

/// The key a value found in the input stands for: strings as they are, numbers and
/// booleans as their JSON text; objects, arrays and null give no key.
fn key_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Checks a flow key given at submission.
pub fn check_flow_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_FLOW_KEY_LEN {
        return Err(Error::invalid_parameter(format!(
            "concurrency_key must be 1-{MAX_FLOW_KEY_LEN} bytes"
        )));
    }
    crate::text::refuse_nul("concurrency_key", key)
}

/// A task's flow key: the one given at submission, else the value the agent's pointer
/// finds in the input (a string, number or boolean, cut to [`MAX_FLOW_KEY_LEN`] bytes
/// on a character boundary).
pub fn flow_key(explicit: Option<&str>, pointer: Option<&str>, input: &Value) -> Option<String> {
    if let Some(key) = explicit {
        return Some(key.to_owned());
    }
    let mut key = key_of(input.pointer(pointer?)?)?;
    if key.len() > MAX_FLOW_KEY_LEN {
        let mut end = MAX_FLOW_KEY_LEN;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    (!key.is_empty() && !key.contains('\0')).then_some(key)
}

/// The key dispatch takes turns by: `k:` and the flow key, else `u:` and the owner
/// (empty for a task without one). Every fair key sorts after the empty string.
pub fn fair_key(flow_key: Option<&str>, owner: Option<UserId>) -> String {
    match (flow_key, owner) {
        (Some(k), _) => format!("k:{k}"),
        (None, Some(u)) => format!("u:{}", u.0),
        (None, None) => "u:".to_owned(),
    }
}

/// The flow key inside a fair key, if it is one.
pub fn flow_key_of_fair(fair: &str) -> Option<&str> {
    fair.strip_prefix("k:")
}

/// Shares `max` starts between keys taking turns (in turn order): equal parts, each
/// within its `room`, what one key cannot take going to the others. With more keys than
/// starts, the first `max` keys get one each.
pub fn share_turns(max: u32, rooms: &[u32]) -> Vec<u32> {
    let mut quotas = vec![0u32; rooms.len()];
    let mut left = max;
    loop {
        let open: Vec<usize> = (0..rooms.len()).filter(|&i| quotas[i] < rooms[i]).collect();
        if left == 0 || open.is_empty() {
            return quotas;
        }
        let each = (left / open.len() as u32).max(1);
        for i in open {
            let add = each.min(rooms[i] - quotas[i]).min(left);
            quotas[i] += add;
            left -= add;
            if left == 0 {
                break;
            }
        }
    }
}

/// What a rate limiter granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Starts allowed now (at most the number asked for).
    pub granted: u32,
    /// When the next start is allowed, if fewer than asked were granted.
    pub retry_at: Option<Timestamp>,
}

/// What a limiter keeps per key (microseconds since the epoch; 0 for a new key): the
/// Generic Cell Rate Algorithm's theoretical arrival time, and the end of a pause a
/// worker asked for. The two are kept apart so that giving back unused starts never
/// shortens a pause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    pub tat_us: u64,
    pub paused_until_us: u64,
}

impl Cell {
    /// Takes up to `want` starts at `now_us`: the grant and the new state.
    pub fn acquire(self, now_us: u64, want: u32, limit: &RateLimit) -> (Grant, Cell) {
        let (interval, burst) = (limit.interval_us(), limit.burst_us());
        if now_us < self.paused_until_us {
            let retry_at = Timestamp::from_millis(self.paused_until_us.div_ceil(1_000) as i64);
            let grant = Grant {
                granted: 0,
                retry_at: (want > 0).then_some(retry_at),
            };
            return (grant, self);
        }
        let mut tat = self.tat_us.max(now_us);
        let mut granted = 0;
        // A start is allowed while it would not push the arrival time beyond now + burst.
        while granted < want && tat <= now_us + burst {
            tat += interval;
            granted += 1;
        }
        let retry_at = (granted < want)
            .then(|| Timestamp::from_millis(tat.saturating_sub(burst).div_ceil(1_000) as i64));
        (
            Grant { granted, retry_at },
            Cell {
                tat_us: tat,
                ..self
            },
        )
    }

    /// Gives back `n` starts taken but not used.
    pub fn refund(self, n: u32, limit: &RateLimit) -> Cell {
        Cell {
            tat_us: self
                .tat_us
                .saturating_sub(u64::from(n) * limit.interval_us()),
            ..self
        }
    }

    /// No start before `until_us`.
    pub fn pause(self, until_us: u64) -> Cell {
        Cell {
            paused_until_us: self.paused_until_us.max(until_us),
            ..self
        }
    }
}

/// Microseconds since the epoch.
pub fn micros(t: Timestamp) -> u64 {
    u64::try_from(t.millis()).unwrap_or(0) * 1_000
}

/// Counts task starts against rate limits, shared by every server of a cluster (Redis
/// when configured, the database otherwise).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes up to `want` starts for `key` under `limit` now.
    async fn acquire(
        &self,
        key: &str,
        want: u32,
        limit: &RateLimit,
        now: Timestamp,
    ) -> Result<Grant>;
    /// Gives back `n` starts taken but not used (the claim found fewer tasks).
    async fn refund(&self, key: &str, n: u32, limit: &RateLimit) -> Result<()>;
    /// No start for `key` before `until` (a worker reported `rate_limited`).
    async fn pause(&self, key: &str, until: Timestamp) -> Result<()>;
}

/// The limiter key of an agent's rate limit, or of one flow key's.
pub fn limiter_key(agent: &str, flow_key: Option<&str>) -> String {
    match flow_key {
        Some(k) => format!("rate:{agent}:k:{k}"),
        None => format!("rate:{agent}"),
    }
}

/// The checks every [`RateLimiter`] passes (the database's, Redis's), for their tests.
#[doc(hidden)]
pub mod conformance {
    use super::{RateLimit, RateLimiter};
    use crate::time::Timestamp;

    /// Starts spaced by the limit with a burst of 100 ms worth, unused ones given back,
    /// a pause holding every start until it ends. `key` must be fresh; `t0` is the clock.
    pub async fn rate_limiter_spaces_starts(limiter: &dyn RateLimiter, key: &str, t0: Timestamp) {
        let limit = RateLimit {
            limit: 10,
            period_s: 1,
            key: None,
        };
        let g = limiter.acquire(key, 50, &limit, t0).await.unwrap();
        assert_eq!(g.granted, 2, "one start and a burst of 100 ms worth");
        assert!(g.retry_at.is_some_and(|at| at > t0));
        assert_eq!(
            limiter.acquire(key, 5, &limit, t0).await.unwrap().granted,
            0
        );
        limiter.refund(key, 2, &limit).await.unwrap();
        assert_eq!(
            limiter.acquire(key, 5, &limit, t0).await.unwrap().granted,
            2
        );
        let later = t0.plus_ms(1_000);
        assert_eq!(
            limiter
                .acquire(key, 50, &limit, later)
                .await
                .unwrap()
                .granted,
            2
        );
        limiter.pause(key, later.plus_ms(5_000)).await.unwrap();
        // Starts given back during a pause do not shorten it.
        limiter.refund(key, 50, &limit).await.unwrap();
        let paused = limiter
            .acquire(key, 5, &limit, later.plus_ms(2_000))
            .await
            .unwrap();
        assert_eq!(paused.granted, 0);
        assert_eq!(paused.retry_at, Some(later.plus_ms(5_000)));
        let after = limiter
            .acquire(key, 1, &limit, later.plus_ms(5_000))
            .await
            .unwrap();
        assert_eq!(after.granted, 1, "the pause is over");
        // Over five seconds of asking all the time: 50 starts and the burst.
        let (key2, mut total) = (format!("{key}:steady"), 0);
        let start = later.plus_ms(60_000);
        for ms in (0..5_000).step_by(10) {
            total += limiter
                .acquire(&key2, 100, &limit, start.plus_ms(ms))
                .await
                .unwrap()
                .granted;
        }
        assert!((50..=52).contains(&total), "{total} starts in 5 s at 10/s");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn starts_are_spaced_with_a_small_burst() {
        let limit = RateLimit {
            limit: 10,
            period_s: 1,
            key: None,
        };
        assert_eq!((limit.interval_us(), limit.burst_us()), (100_000, 100_000));
        let now = 1_000_000_000;
        let (g, cell) = Cell::default().acquire(now, 50, &limit);
        assert_eq!(g.granted, 2, "a burst of 100 ms worth plus one");
        assert_eq!(cell.acquire(now + 50_000, 5, &limit).0.granted, 0);
        let (g, next) = cell.acquire(now + 100_000, 5, &limit);
        assert_eq!(g.granted, 1);
        assert_eq!(next.tat_us, cell.tat_us + 100_000);
        // Over five seconds, asking all the time: 50 starts and the burst.
        let (mut cell, mut total) = (Cell::default(), 0);
        for ms in 0..5_000 {
            let (g, c) = cell.acquire(now + ms * 1_000, 100, &limit);
            cell = c;
            total += g.granted;
        }
        assert!((50..=52).contains(&total), "{total}");
    }

    #[test]
    fn a_slow_limit_has_no_burst_and_refunds_never_shorten_a_pause() {
        let limit = RateLimit {
            limit: 1,
            period_s: 60,
            key: None,
        };
        let (g, cell) = Cell::default().acquire(0, 5, &limit);
        assert_eq!(g.granted, 1);
        assert_eq!(
            (limit.burst_us(), g.retry_at.unwrap().millis()),
            (0, 60_000)
        );
        let paused = cell.pause(90_000_000).refund(1, &limit);
        let (g, _) = paused.acquire(1_000_000, 1, &limit);
        assert_eq!((g.granted, g.retry_at.unwrap().millis()), (0, 90_000));
        assert_eq!(paused.acquire(90_000_000, 1, &limit).0.granted, 1);
    }

    #[test]
    fn turns_are_shared_equally_within_each_room() {
        assert_eq!(share_turns(64, &[u32::MAX, u32::MAX]), [32, 32]);
        assert_eq!(share_turns(64, &[1, u32::MAX]), [1, 63]);
        assert_eq!(share_turns(3, &[9, 9, 9, 9, 9]), [1, 1, 1, 0, 0]);
        assert_eq!(share_turns(10, &[0, 2, 0]), [0, 2, 0]);
        assert_eq!(share_turns(7, &[u32::MAX; 3]).iter().sum::<u32>(), 7);
        assert_eq!(share_turns(0, &[5]), [0]);
        assert!(share_turns(5, &[]).is_empty());
    }

    #[test]
    fn flow_keys_come_from_the_submission_or_the_input() {
        let input = json!({"customer": {"id": 42}, "name": "acme", "list": [1]});
        assert_eq!(
            flow_key(Some("x"), Some("/name"), &input).as_deref(),
            Some("x")
        );
        assert_eq!(
            flow_key(None, Some("/name"), &input).as_deref(),
            Some("acme")
        );
        assert_eq!(
            flow_key(None, Some("/customer/id"), &input).as_deref(),
            Some("42")
        );
        assert_eq!(flow_key(None, Some("/list"), &input), None);
        assert_eq!(flow_key(None, Some("/missing"), &input), None);
        assert_eq!(flow_key(None, None, &input), None);
        let long = json!({"k": "é".repeat(200)});
        assert!(flow_key(None, Some("/k"), &long).unwrap().len() <= MAX_FLOW_KEY_LEN);
        assert_eq!(fair_key(Some("a"), None), "k:a");
        assert_eq!(flow_key_of_fair("k:a"), Some("a"));
        assert_eq!(flow_key_of_fair("u:"), None);
    }
}
