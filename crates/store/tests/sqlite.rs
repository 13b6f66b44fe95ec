//! The storage conformance suite on the embedded SQLite backend.

use std::sync::Arc;

use switchyard_core::store::Store;
use switchyard_store::conformance::SharedStore;
use switchyard_store::{Durability, SqliteStore};

async fn sqlite_store() -> Option<SharedStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db"), Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    // The directory must outlive the store: leak it for the test's lifetime.
    std::mem::forget(dir);
    Some(Arc::new(store))
}

switchyard_store::conformance_tests!(sqlite_store);
