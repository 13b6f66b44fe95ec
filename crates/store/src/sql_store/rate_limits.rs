//! `RateLimiter` on the database, for clusters without Redis: one row per key holding
//! the GCRA arrival time, updated under a per-key lock.

use async_trait::async_trait;
use switchyard_core::flow::{Grant, RateLimit, RateLimiter, gcra, gcra_retry_at};
use switchyard_core::{Result, Timestamp};

use super::{SqlStore, Tx};
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

impl<D: Dialect> SqlStore<D> {
    /// Runs `change` on the key's stored arrival time (µs; 0 when none) under the key's
    /// lock and stores what it returns.
    async fn with_tat<T: Send>(
        &self,
        key: &str,
        change: impl FnOnce(u64) -> (T, u64) + Send,
    ) -> Result<T> {
        let mut tx: Tx<D> = self.begin_write(false).await?;
        self.dialect.lock_agent(tx.conn(), key).await?;
        let tat = Query::new(sql!("common", "get_rate_limit"))
            .bind(key)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("read rate limit"))?
            .map(|r| r.i64_at(0))
            .transpose()?
            .unwrap_or(0);
        let (out, new) = change(u64::try_from(tat).unwrap_or(0));
        Query::new(sql!("common", "put_rate_limit"))
            .bind(key)
            .bind(i64::try_from(new).unwrap_or(i64::MAX))
            .execute(tx.on())
            .await
            .map_err(db_err("write rate limit"))?;
        tx.commit().await.map_err(db_err("commit rate limit"))?;
        Ok(out)
    }
}

fn micros(t: Timestamp) -> u64 {
    u64::try_from(t.millis()).unwrap_or(0) * 1_000
}

#[async_trait]
impl<D: Dialect> RateLimiter for SqlStore<D> {
    async fn acquire(
        &self,
        key: &str,
        want: u32,
        limit: &RateLimit,
        now: Timestamp,
    ) -> Result<Grant> {
        let (interval, burst) = (limit.interval_us(), limit.burst_us());
        self.with_tat(key, |tat| {
            let (granted, new) = gcra(tat, micros(now), want, interval, burst);
            let retry_at = (granted < want).then(|| gcra_retry_at(new, burst));
            (Grant { granted, retry_at }, new)
        })
        .await
    }

    async fn refund(&self, key: &str, n: u32, limit: &RateLimit) -> Result<()> {
        let back = u64::from(n) * limit.interval_us();
        self.with_tat(key, |tat| ((), tat.saturating_sub(back)))
            .await
    }

    async fn pause(&self, key: &str, until: Timestamp) -> Result<()> {
        self.with_tat(key, |tat| ((), tat.max(micros(until)))).await
    }
}
