//! Switchyard's database backends.
//!
//! `SqliteStore` (embedded default) and `PgStore` (production) implement
//! `switchyard_core::store::Store` with the same behaviour, proven by the
//! [`conformance`] suite that the tests of this crate run against both.

mod batch;
mod common;
mod rows;

pub mod conformance;
pub mod sqlite;

pub use sqlite::{Durability, SqliteStore};
