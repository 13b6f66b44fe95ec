//! The cache layer (in-process or Redis): sessions, counters for rate limits, the result
//! cache and an agent key-value store, plus the event bus that fans events out across
//! API servers.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::auth::{RefreshOutcome, Rotation, Session};
use crate::error::Result;
use crate::event::{BusMessage, SharedBusMessage};
use crate::ids::{SessionId, UserId};

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// `memory` or `redis`.
    fn backend(&self) -> &'static str;

    async fn ping(&self) -> Result<()>;

    /// Set while the cache serves on fallbacks (its shared backend is unreachable): what
    /// is degraded and why, for `/readyz` and the logs.
    fn degraded(&self) -> Option<String> {
        None
    }

    /// Periodic housekeeping (dropping expired entries), for backends that need it.
    async fn sweep(&self) -> Result<()> {
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Adds `by` to a counter that expires `ttl` after its creation; returns the new value.
    /// Rate limiters build fixed windows on this.
    async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64>;

    async fn put_session(&self, session: &Session) -> Result<()>;
    async fn get_session(&self, id: SessionId) -> Result<Option<Session>>;
    /// Removes a session; returns whether it existed.
    async fn delete_session(&self, id: SessionId) -> Result<bool>;
    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>>;
    /// Atomically swaps the session's refresh token if the presented hash is the current
    /// one; repeats the last rotation's answer if it is the hash that rotation spent and
    /// the grace window has not passed; revokes the session if it is any other previously
    /// used one (see [`crate::store::rotate_session`]).
    async fn rotate_refresh(
        &self,
        id: SessionId,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome>;
}

/// Delivers bus messages to every process, this one included.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    fn backend(&self) -> &'static str;

    /// Whether a publish stays inside this process, costing no round trip (so that a
    /// caller may publish inline on its hot path).
    fn in_process(&self) -> bool {
        false
    }

    async fn publish(&self, message: SharedBusMessage) -> Result<()>;

    /// A receiver of every message published anywhere from now on.
    fn subscribe(&self) -> broadcast::Receiver<SharedBusMessage>;

    /// Publishes a message whose loss receivers recover from (they re-read the store or
    /// poll): a failure is logged, not returned.
    async fn send(&self, message: BusMessage) {
        if let Err(e) = self.publish(std::sync::Arc::new(message)).await {
            tracing::warn!(error = %e, "event bus publish failed");
        }
    }
}
