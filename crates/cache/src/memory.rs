//! In-process cache and event bus for a single node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::broadcast;

use switchyard_core::Result;
use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::SharedBusMessage;
use switchyard_core::store::rotate_session;
use switchyard_core::{SessionId, Timestamp, UserId};

pub use switchyard_core::store::MAX_USED_HASHES;

struct Entry_ {
    value: Vec<u8>,
    expires: Instant,
}

pub struct MemoryCache {
    kv: DashMap<String, Entry_>,
    counters: DashMap<String, (i64, Instant)>,
    sessions: DashMap<SessionId, Session>,
    by_user: DashMap<UserId, HashSet<SessionId>>,
    max_entries: usize,
}

impl MemoryCache {
    /// `max_entries` bounds the key-value part: past it, expired entries are swept and,
    /// if that is not enough, arbitrary ones are evicted (it is a cache).
    pub fn new(max_entries: usize) -> Self {
        MemoryCache {
            kv: DashMap::new(),
            counters: DashMap::new(),
            sessions: DashMap::new(),
            by_user: DashMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    /// Drops everything expired.
    fn sweep_expired(&self) {
        let now = Instant::now();
        self.kv.retain(|_, e| e.expires > now);
        self.counters.retain(|_, (_, exp)| *exp > now);
        let wall = Timestamp::now();
        let expired: Vec<Session> = self
            .sessions
            .iter()
            .filter(|s| s.expires_at <= wall)
            .map(|s| s.value().clone())
            .collect();
        for s in expired {
            self.forget_session(&s);
        }
    }

    fn make_room(&self) {
        if self.kv.len() < self.max_entries {
            return;
        }
        let now = Instant::now();
        self.kv.retain(|_, e| e.expires > now);
        let excess = (self.kv.len() + 1).saturating_sub(self.max_entries);
        if excess > 0 {
            let victims: Vec<String> = self
                .kv
                .iter()
                .take(excess.max(self.max_entries / 10))
                .map(|e| e.key().clone())
                .collect();
            for k in victims {
                self.kv.remove(&k);
            }
        }
    }

    fn forget_session(&self, s: &Session) {
        self.sessions.remove(&s.id);
        if let Some(mut ids) = self.by_user.get_mut(&s.user_id) {
            ids.remove(&s.id);
        }
        self.by_user.remove_if(&s.user_id, |_, ids| ids.is_empty());
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::new(100_000)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn sweep(&self) -> Result<()> {
        self.sweep_expired();
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = Instant::now();
        // Read under the shard lock, release it, then (if expired) take the write lock.
        let found = self
            .kv
            .get(key)
            .map(|e| (e.expires > now).then(|| e.value.clone()));
        match found {
            Some(Some(value)) => Ok(Some(value)),
            Some(None) => {
                self.kv.remove_if(key, |_, e| e.expires <= now);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.make_room();
        self.kv.insert(
            key.to_owned(),
            Entry_ {
                value: value.to_vec(),
                expires: Instant::now() + ttl,
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.kv.remove(key).is_some())
    }

    async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64> {
        let now = Instant::now();
        let mut slot = self
            .counters
            .entry(key.to_owned())
            .or_insert((0, now + ttl));
        if slot.1 <= now {
            *slot = (0, now + ttl);
        }
        slot.0 = slot.0.saturating_add(by);
        Ok(slot.0)
    }

    async fn put_session(&self, session: &Session) -> Result<()> {
        self.sessions.insert(session.id, session.clone());
        self.by_user
            .entry(session.user_id)
            .or_default()
            .insert(session.id);
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        let now = Timestamp::now();
        Ok(self
            .sessions
            .get(&id)
            .filter(|s| s.expires_at > now)
            .map(|s| s.value().clone()))
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let Some(s) = self.sessions.get(&id).map(|s| s.value().clone()) else {
            return Ok(false);
        };
        self.forget_session(&s);
        Ok(true)
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        let now = Timestamp::now();
        let ids: Vec<SessionId> = self
            .by_user
            .get(&user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let mut out: Vec<Session> = ids
            .into_iter()
            .filter_map(|id| self.sessions.get(&id).map(|s| s.value().clone()))
            .filter(|s| s.expires_at > now)
            .collect();
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome> {
        let outcome = match self.sessions.entry(id) {
            Entry::Vacant(_) => RefreshOutcome::Invalid,
            Entry::Occupied(mut e) => rotate_session(e.get_mut(), rotation),
        };
        if outcome == RefreshOutcome::Reused {
            self.delete_session(id).await?;
        }
        Ok(outcome)
    }
}

/// Fans messages out to subscribers inside this process.
pub struct LocalBus {
    tx: broadcast::Sender<SharedBusMessage>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalBus { tx }
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        LocalBus::new(65_536)
    }
}

#[async_trait]
impl EventBus for LocalBus {
    fn backend(&self) -> &'static str {
        "local"
    }

    fn in_process(&self) -> bool {
        true
    }

    async fn publish(&self, message: SharedBusMessage) -> Result<()> {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.tx.send(message);
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<SharedBusMessage> {
        self.tx.subscribe()
    }
}

/// Convenience for tests and wiring.
pub fn memory_backends() -> (Arc<MemoryCache>, Arc<LocalBus>) {
    (
        Arc::new(MemoryCache::default()),
        Arc::new(LocalBus::default()),
    )
}
