//! Cache and event-bus backends.
//!
//! `MemoryCache` and `LocalBus` serve a single process (the embedded default);
//! the Redis implementations share state and events across a cluster. The
//! [`conformance`] suite holds every implementation to the same behaviour.

pub mod conformance;
pub mod memory;

pub use memory::{LocalBus, MemoryCache};
