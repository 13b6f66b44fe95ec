//! Switchyard's domain layer.
//!
//! Everything here is pure: the task lifecycle and its rules (state machine, retry
//! and backoff, fallback), agent definitions and input validation, the identity and
//! permission model, and the traits the rest of the system implements (`Store`,
//! `Cache`, `EventBus`). Nothing in this crate performs I/O; backends live in
//! `switchyard-store` and `switchyard-cache`, services in `switchyard-engine`.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cache;
pub mod error;
pub mod event;
pub mod files;
pub mod flow;
pub mod ids;
pub mod json;
pub mod llm;
pub mod monitoring;
pub mod retry;
pub mod schedule;
pub mod schema;
pub mod step;
pub mod store;
pub mod task;
pub mod template;
pub mod text;
pub mod time;
pub mod wait;

pub use error::{Error, ErrorCode, Result};
pub use ids::{ApiKeyId, AuditId, BackupId, FileId, SessionId, TaskId, UserId, WorkerId};
pub use time::Timestamp;
