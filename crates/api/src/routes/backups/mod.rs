//! `/api/v1/backups`: the backups the servers took, and taking one now (admins).

pub mod create;
pub mod list;
