//! Switchyard's database backends.
//!
//! One store, [`SqlStore`](sql_store::SqlStore), is written once over a [`Dialect`]
//! (`dialect.rs`); each database is a dialect in a folder of its own: `SqliteStore`
//! (embedded default, `sqlite/`) and `PgStore` (production, `postgres/`). Both implement
//! `switchyard_core::store::Store` with the same behaviour, proven by the conformance
//! suite (feature `testing`) that the tests of this crate run against both.
//!
//! [`Dialect`]: dialect::Dialect

mod batch;
mod calls;
mod content;
mod dialect;
mod query;
mod rows;
mod sql;
mod sql_store;

#[cfg(feature = "testing")]
pub mod conformance;
pub mod postgres;
pub mod sqlite;

pub use postgres::{PgBus, PgLeadership, PgSettings, PgStore};
pub use sqlite::{Durability, SqliteStore};
