//! Switchyard's database backends.
//!
//! `SqliteStore` (embedded default) and `PgStore` (production) implement
//! `switchyard_core::store::Store` with the same behaviour, proven by the
//! [`conformance`] suite that the tests of this crate run against both.

mod batch;
mod calls;
mod common;
mod content;
mod monitoring;
mod rows;
mod values;
mod wal_sync;

pub mod conformance;
pub mod postgres;
pub mod sqlite;

pub use postgres::{PgBus, PgLeadership, PgSettings, PgStore};
pub use sqlite::{Durability, SqliteStore};
