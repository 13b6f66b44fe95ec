//! [`MemoryLimiter`]: rate limits in this process's memory, exact when one process owns
//! the whole install (embedded storage). Clusters share theirs through Redis or the
//! database.

use async_trait::async_trait;
use dashmap::DashMap;
use switchyard_core::Result;
use switchyard_core::Timestamp;
use switchyard_core::flow::{Cell, Grant, RateLimit, RateLimiter, micros};

/// Past this many keys, the ones whose limit has long caught up are forgotten (a
/// forgotten key is the same as one whose arrival time passed).
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct MemoryLimiter {
    cells: DashMap<String, Cell>,
}

impl MemoryLimiter {
    fn with_cell<T>(&self, key: &str, change: impl FnOnce(Cell) -> (T, Cell)) -> T {
        if self.cells.len() > MAX_KEYS {
            let now = micros(Timestamp::now());
            self.cells
                .retain(|_, c| c.tat_us.max(c.paused_until_us) > now);
        }
        let mut cell = self.cells.entry(key.to_owned()).or_default();
        let (out, new) = change(*cell);
        *cell = new;
        out
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn acquire(
        &self,
        key: &str,
        want: u32,
        limit: &RateLimit,
        now: Timestamp,
    ) -> Result<Grant> {
        Ok(self.with_cell(key, |cell| cell.acquire(micros(now), want, limit)))
    }

    async fn refund(&self, key: &str, n: u32, limit: &RateLimit) -> Result<()> {
        self.with_cell(key, |cell| ((), cell.refund(n, limit)));
        Ok(())
    }

    async fn pause(&self, key: &str, until: Timestamp) -> Result<()> {
        self.with_cell(key, |cell| ((), cell.pause(micros(until))));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_limiter_follows_the_rule() {
        let limiter = MemoryLimiter::default();
        switchyard_core::flow::conformance::rate_limiter_spaces_starts(
            &limiter,
            "k",
            Timestamp::from_millis(1_800_000_000_000),
        )
        .await;
    }
}
