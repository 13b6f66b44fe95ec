//! Degraded mode: keep serving when Redis goes away, recover when it returns.
//!
//! [`ClusterCache`] puts Redis in front of the database. Sessions are written through to
//! the database, read from Redis, and read from the database when Redis misses or
//! fails (so they also survive a Redis restart, which keeps nothing on disk). The
//! result cache and key-value store become misses while Redis is down, and rate-limit
//! counters count per process. [`FailoverBus`] sends events over Redis pub/sub and over
//! the database bus (PostgreSQL NOTIFY) while Redis is down; dispatcher wake-ups always
//! take the database bus, so dispatch never depends on Redis.
//!
//! One [`RedisHealth`] is shared by both: the first failure switches to degraded mode
//! at once (no request waits on a dead server twice), a probe pings Redis every second
//! and switches back when it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::{BusMessage, SharedBusMessage};
use switchyard_core::store::SessionStore;
use switchyard_core::{Error, Result, SessionId, Timestamp, UserId};

use crate::memory::MemoryCache;

const PROBE_EVERY: Duration = Duration::from_secs(1);
/// After Redis returns, events also go over the database bus for this long: other
/// processes may not have re-subscribed to Redis yet. Task followers drop the duplicates
/// by seq; wake-ups and invalidations are idempotent.
const SETTLE: Duration = Duration::from_secs(10);

/// Whether Redis answers, as seen by this process.
#[derive(Default)]
pub struct RedisHealth {
    degraded: AtomicBool,
    detail: Mutex<Option<String>>,
    recovered_at: Mutex<Option<std::time::Instant>>,
}

impl RedisHealth {
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// What is degraded and why, while it is.
    pub fn detail(&self) -> Option<String> {
        if self.is_degraded() {
            self.detail.lock().clone()
        } else {
            None
        }
    }

    fn failed(&self, e: &Error) {
        *self.detail.lock() = Some(format!(
            "redis unreachable ({}): sessions from the database, cache misses, \
             per-process rate limits, events over the database",
            e.message
        ));
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %e, "Redis is unreachable: serving in degraded mode");
        }
    }

    fn recovered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            *self.recovered_at.lock() = Some(std::time::Instant::now());
            tracing::info!("Redis answers again: leaving degraded mode");
        }
    }

    /// Shortly after a recovery, while other processes may still be re-subscribing.
    fn settling(&self) -> bool {
        self.recovered_at
            .lock()
            .is_some_and(|at| at.elapsed() < SETTLE)
    }
}

/// Redis (if configured) in front of the database, with the fallbacks described above.
pub struct ClusterCache {
    redis: Option<Arc<dyn Cache>>,
    sessions: Arc<dyn SessionStore>,
    local: MemoryCache,
    health: Arc<RedisHealth>,
    probe: Option<JoinHandle<()>>,
}

impl ClusterCache {
    /// Without `redis`, sessions live in the database and the rest is per process.
    pub fn new(redis: Option<Arc<dyn Cache>>, sessions: Arc<dyn SessionStore>) -> Self {
        let health = Arc::new(RedisHealth::default());
        let probe = redis.clone().map(|redis| {
            let health = health.clone();
            tokio::spawn(async move {
                loop {
                    match tokio::time::timeout(Duration::from_secs(3), redis.ping()).await {
                        Ok(Ok(())) => health.recovered(),
                        Ok(Err(e)) => health.failed(&e),
                        Err(_) => health.failed(&Error::unavailable("ping timed out")),
                    }
                    tokio::time::sleep(PROBE_EVERY).await;
                }
            })
        });
        ClusterCache {
            redis,
            sessions,
            local: MemoryCache::default(),
            health,
            probe,
        }
    }

    pub fn health(&self) -> Arc<RedisHealth> {
        self.health.clone()
    }

    /// Redis, unless it is known to be down.
    fn redis(&self) -> Option<&Arc<dyn Cache>> {
        self.redis.as_ref().filter(|_| !self.health.is_degraded())
    }

    /// Notes a Redis failure and hands back nothing: the caller falls back.
    fn failed<T>(&self, e: Error) -> Option<T> {
        self.health.failed(&e);
        None
    }

    async fn db_rotate(&self, id: SessionId, rotation: &Rotation<'_>) -> Result<RefreshOutcome> {
        let outcome = self.sessions.rotate_refresh(id, rotation).await?;
        if let (RefreshOutcome::Rotated(s), Some(redis)) = (&outcome, self.redis())
            && let Err(e) = redis.put_session(s).await
        {
            self.health.failed(&e);
        }
        Ok(outcome)
    }
}

impl Drop for ClusterCache {
    fn drop(&mut self) {
        if let Some(probe) = &self.probe {
            probe.abort();
        }
    }
}

#[async_trait]
impl Cache for ClusterCache {
    fn backend(&self) -> &'static str {
        if self.redis.is_some() {
            "redis"
        } else {
            "database"
        }
    }

    /// It serves whether or not Redis answers; see [`Cache::degraded`].
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn degraded(&self) -> Option<String> {
        self.health.detail()
    }

    async fn sweep(&self) -> Result<()> {
        self.local.sweep().await?;
        self.sessions.prune_sessions(Timestamp::now()).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match (&self.redis, self.redis()) {
            (None, _) => self.local.get(key).await,
            (Some(_), None) => Ok(None),
            (Some(_), Some(redis)) => Ok(redis.get(key).await.unwrap_or_else(|e| self.failed(e))),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        match (&self.redis, self.redis()) {
            (None, _) => self.local.set(key, value, ttl).await,
            (Some(_), None) => Ok(()),
            (Some(_), Some(redis)) => {
                if let Err(e) = redis.set(key, value, ttl).await {
                    self.health.failed(&e);
                }
                Ok(())
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let local = self.local.delete(key).await?;
        match self.redis() {
            Some(redis) => Ok(redis
                .delete(key)
                .await
                .unwrap_or_else(|e| self.failed(e).unwrap_or(false))
                || local),
            None => Ok(local),
        }
    }

    async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64> {
        if let Some(redis) = self.redis() {
            match redis.incr(key, by, ttl).await {
                Ok(v) => return Ok(v),
                Err(e) => self.health.failed(&e),
            }
        }
        self.local.incr(key, by, ttl).await
    }

    async fn put_session(&self, session: &Session) -> Result<()> {
        self.sessions.put_session(session).await?;
        if let Some(redis) = self.redis()
            && let Err(e) = redis.put_session(session).await
        {
            self.health.failed(&e);
        }
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        if let Some(redis) = self.redis() {
            match redis.get_session(id).await {
                Ok(Some(s)) => return Ok(Some(s)),
                Ok(None) => {}
                Err(e) => self.health.failed(&e),
            }
        }
        let found = self.sessions.get_session(id, Timestamp::now()).await?;
        // Created while Redis was down, or Redis lost it: put it back.
        if let (Some(s), Some(redis)) = (&found, self.redis())
            && let Err(e) = redis.put_session(s).await
        {
            self.health.failed(&e);
        }
        Ok(found)
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let in_db = self.sessions.delete_session(id).await?;
        let in_redis = match self.redis() {
            Some(redis) => redis
                .delete_session(id)
                .await
                .unwrap_or_else(|e| self.failed(e).unwrap_or(false)),
            None => false,
        };
        Ok(in_db || in_redis)
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        let mut all = self.sessions.list_sessions(user, Timestamp::now()).await?;
        if let Some(redis) = self.redis() {
            match redis.list_sessions(user).await {
                Ok(live) => {
                    // Redis has the freshest copy of each session it holds.
                    all.retain(|s| !live.iter().any(|l| l.id == s.id));
                    all.extend(live);
                }
                Err(e) => self.health.failed(&e),
            }
        }
        all.sort_by_key(|s| (s.created_at, s.id));
        Ok(all)
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome> {
        let Some(redis) = self.redis() else {
            return self.db_rotate(id, rotation).await;
        };
        match redis.rotate_refresh(id, rotation).await {
            Ok(RefreshOutcome::Rotated(s)) => {
                // Keep the database copy current: it answers when Redis cannot, and must
                // never accept a token Redis already rotated away.
                self.sessions.put_session(&s).await?;
                Ok(RefreshOutcome::Rotated(s))
            }
            // A repeat within the grace window changes nothing.
            Ok(RefreshOutcome::Repeated(s)) => Ok(RefreshOutcome::Repeated(s)),
            Ok(RefreshOutcome::Reused) => {
                self.sessions.delete_session(id).await?;
                Ok(RefreshOutcome::Reused)
            }
            Ok(RefreshOutcome::Invalid) => match redis.get_session(id).await {
                // Redis holds the session: its verdict stands.
                Ok(Some(_)) => Ok(RefreshOutcome::Invalid),
                // Redis does not know it (made while Redis was down, or lost): ask the database.
                Ok(None) => self.db_rotate(id, rotation).await,
                Err(e) => {
                    self.health.failed(&e);
                    self.db_rotate(id, rotation).await
                }
            },
            Err(e) => {
                self.health.failed(&e);
                self.db_rotate(id, rotation).await
            }
        }
    }
}

/// Events over Redis pub/sub, over the database bus while Redis is down; wake-ups for
/// dispatchers always over the database bus.
pub struct FailoverBus {
    redis: Arc<dyn EventBus>,
    database: Arc<dyn EventBus>,
    health: Arc<RedisHealth>,
    tx: broadcast::Sender<SharedBusMessage>,
    forwarders: Vec<JoinHandle<()>>,
}

impl FailoverBus {
    pub fn new(
        redis: Arc<dyn EventBus>,
        database: Arc<dyn EventBus>,
        health: Arc<RedisHealth>,
    ) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        let forwarders = [redis.subscribe(), database.subscribe()]
            .into_iter()
            .map(|mut rx| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    loop {
                        match rx.recv().await {
                            Ok(m) => {
                                let _ = tx.send(m);
                            }
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                tracing::warn!(missed = n, "the event bus fell behind");
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        }
                    }
                })
            })
            .collect();
        FailoverBus {
            redis,
            database,
            health,
            tx,
            forwarders,
        }
    }
}

impl Drop for FailoverBus {
    fn drop(&mut self) {
        for f in &self.forwarders {
            f.abort();
        }
    }
}

#[async_trait]
impl EventBus for FailoverBus {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, message: SharedBusMessage) -> Result<()> {
        let wake_up = matches!(
            &*message,
            BusMessage::Wake { .. } | BusMessage::Scheduled { .. }
        );
        if !wake_up && !self.health.is_degraded() {
            match self.redis.publish(message.clone()).await {
                Ok(()) if !self.health.settling() => return Ok(()),
                Ok(()) => {}
                Err(e) => self.health.failed(&e),
            }
        }
        self.database.publish(message).await
    }

    fn subscribe(&self) -> broadcast::Receiver<SharedBusMessage> {
        self.tx.subscribe()
    }
}
