//! The cache conformance suite on the production composition: Redis in front of the
//! database ([`ClusterCache`], [`FailoverBus`]), and the database alone (a cluster
//! without Redis). Sessions use an SQLite store here; the PostgreSQL session store is
//! proven by the storage conformance suite.

use std::sync::Arc;

use switchyard_cache::conformance::Backends;
use switchyard_cache::{ClusterCache, FailoverBus, LocalBus, RedisBus, RedisCache, RedisSettings};
use switchyard_core::SessionId;
use switchyard_core::store::{SessionStore, Store};
use switchyard_store::{Durability, SqliteStore};

async fn sqlite() -> Arc<dyn SessionStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("t.db"), Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    std::mem::forget(dir);
    Arc::new(store)
}

mod redis_in_front_of_the_database {
    use super::*;

    async fn backends() -> Option<Backends> {
        let url = match std::env::var("TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!(
                    "SKIPPED: TEST_REDIS_URL not set — Redis cache conformance suite did not run"
                );
                return None;
            }
        };
        let mut settings = RedisSettings::new(url);
        settings.prefix = format!("sy-test:{}:", SessionId::new());
        let redis = Arc::new(RedisCache::new(&settings).expect("settings"));
        let cache = ClusterCache::new(Some(redis), sqlite().await);
        let bus = FailoverBus::new(
            RedisBus::start(&settings).await.expect("bus"),
            Arc::new(LocalBus::default()),
            cache.health(),
        );
        Some((Arc::new(cache), Arc::new(bus)))
    }

    switchyard_cache::cache_conformance_tests!(backends);
}

mod database_only {
    use super::*;

    async fn backends() -> Option<Backends> {
        let cache = ClusterCache::new(None, sqlite().await);
        Some((Arc::new(cache), Arc::new(LocalBus::default())))
    }

    switchyard_cache::cache_conformance_tests!(backends);
}
