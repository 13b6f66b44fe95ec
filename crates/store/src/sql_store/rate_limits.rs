//! `RateLimiter` on the database, for clusters without Redis: one row per key holding
//! the limiter's [`Cell`], updated under a per-key lock.

use async_trait::async_trait;
use switchyard_core::flow::{Cell, Grant, RateLimit, RateLimiter, micros};
use switchyard_core::{Result, Timestamp};

use super::{SqlStore, Tx};
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

fn stored(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl<D: Dialect> SqlStore<D> {
    /// Runs `change` on the key's cell under the key's lock and stores what it returns.
    async fn with_cell<T: Send>(
        &self,
        key: &str,
        change: impl FnOnce(Cell) -> (T, Cell) + Send,
    ) -> Result<T> {
        let mut tx: Tx<D> = self.begin_write(false).await?;
        self.dialect.lock_agent(tx.conn(), key).await?;
        let cell = match Query::new(sql!("common", "get_rate_limit"))
            .bind(key)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("read rate limit"))?
        {
            Some(r) => Cell {
                tat_us: u64::try_from(r.i64_at(0)?).unwrap_or(0),
                paused_until_us: u64::try_from(r.i64_at(1)?).unwrap_or(0),
            },
            None => Cell::default(),
        };
        let (out, new) = change(cell);
        Query::new(sql!("common", "put_rate_limit"))
            .bind(key)
            .bind(stored(new.tat_us))
            .bind(stored(new.paused_until_us))
            .execute(tx.on())
            .await
            .map_err(db_err("write rate limit"))?;
        tx.commit().await.map_err(db_err("commit rate limit"))?;
        Ok(out)
    }
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
        self.with_cell(key, |cell| cell.acquire(micros(now), want, limit))
            .await
    }

    async fn refund(&self, key: &str, n: u32, limit: &RateLimit) -> Result<()> {
        self.with_cell(key, |cell| ((), cell.refund(n, limit)))
            .await
    }

    async fn pause(&self, key: &str, until: Timestamp) -> Result<()> {
        self.with_cell(key, |cell| ((), cell.pause(micros(until))))
            .await
    }
}
