//! Cache and event-bus backends.
//!
//! `MemoryCache` and `LocalBus` serve a single process (the embedded default);
//! the Redis implementations share state and events across a cluster. The conformance
//! suite (feature `testing`) holds every implementation to the same behaviour.

#[cfg(feature = "testing")]
pub mod conformance;
pub mod failover;
pub mod limiter;
pub mod memory;
pub mod redis;

pub use failover::{ClusterCache, FailoverBus, RedisHealth};
pub use limiter::MemoryLimiter;
pub use memory::{LocalBus, MemoryCache};
pub use redis::{RedisBus, RedisCache, RedisSettings};
