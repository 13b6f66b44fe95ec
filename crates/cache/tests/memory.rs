//! The cache conformance suite on the in-process backends.

use std::sync::Arc;

use switchyard_cache::conformance::Backends;
use switchyard_cache::{LocalBus, MemoryCache};

async fn memory() -> Option<Backends> {
    Some((
        Arc::new(MemoryCache::default()),
        Arc::new(LocalBus::default()),
    ))
}

switchyard_cache::cache_conformance_tests!(memory);
