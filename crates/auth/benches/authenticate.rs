//! The per-request credential check: it runs on every API call, so it must stay cheap.
//!
//! `cargo bench -p switchyard-auth --bench authenticate` measures `AuthService::authenticate`
//! for an access token (HS256 verification + session lookup in the cache) and for an API key
//! (SHA-256 + the per-server key cache), on the in-process cache.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_auth::{AuthConfig, AuthService, ClientInfo};
use switchyard_cache::{LocalBus, MemoryCache};
use switchyard_core::auth::{Role, Scope};
use switchyard_core::store::Store;
use switchyard_store::{Durability, SqliteStore};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (auth, token, key) = rt.block_on(async {
        let store = SqliteStore::open(&dir.path().join("bench.db"), Durability::Normal)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let auth = AuthService::new(
            store,
            Arc::new(MemoryCache::default()),
            Arc::new(LocalBus::default()),
            AuthConfig::default(),
        )
        .await
        .unwrap();
        let user = auth
            .create_user_unchecked("bench@example.com", "a bench password", Role::Admin)
            .await
            .unwrap();
        let pair = auth
            .login(
                "bench@example.com",
                "a bench password",
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        let (_, key) = auth
            .issue_api_key(user.id, Role::Admin, "bench", vec![Scope::Read], None)
            .await
            .unwrap();
        (auth, pair.access_token, key)
    });
    c.bench_function("authenticate/access_token", |b| {
        b.to_async(&rt)
            .iter(|| async { auth.authenticate(&token).await.unwrap() })
    });
    c.bench_function("authenticate/api_key", |b| {
        b.to_async(&rt)
            .iter(|| async { auth.authenticate(&key).await.unwrap() })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
