//! The rate limiter the dispatcher and completer use: Redis when configured (shared by
//! every server, and fast), the database otherwise, and the database while Redis does
//! not answer (starts stay limited, if less smoothly, through a Redis outage).

use std::sync::Arc;

use async_trait::async_trait;
use switchyard_core::flow::{Grant, RateLimit, RateLimiter};
use switchyard_core::{Result, Timestamp};

pub struct Limiter {
    primary: Option<Arc<dyn RateLimiter>>,
    database: Arc<dyn RateLimiter>,
}

impl Limiter {
    pub fn new(primary: Option<Arc<dyn RateLimiter>>, database: Arc<dyn RateLimiter>) -> Self {
        Limiter { primary, database }
    }

    async fn either<'a, T, F>(&'a self, op: F) -> Result<T>
    where
        F: Fn(&'a dyn RateLimiter) -> futures::future::BoxFuture<'a, Result<T>>,
    {
        if let Some(primary) = &self.primary {
            match op(primary.as_ref()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::warn!(error = %e, "rate limiter unavailable; using the database")
                }
            }
        }
        op(self.database.as_ref()).await
    }
}

#[async_trait]
impl RateLimiter for Limiter {
    async fn acquire(
        &self,
        key: &str,
        want: u32,
        limit: &RateLimit,
        now: Timestamp,
    ) -> Result<Grant> {
        self.either(|l| l.acquire(key, want, limit, now)).await
    }

    async fn refund(&self, key: &str, n: u32, limit: &RateLimit) -> Result<()> {
        self.either(|l| l.refund(key, n, limit)).await
    }

    async fn pause(&self, key: &str, until: Timestamp) -> Result<()> {
        self.either(|l| l.pause(key, until)).await
    }
}
