//! Backups: what a database hands over for one, and takes back in a restore.
//!
//! A backup is the rows of every table that holds user data, read from one consistent
//! snapshot, as JSON values in a form both backends share (UUIDs as text, times as
//! integers, JSON as JSON, booleans as booleans, task content in its stored escaped form:
//! see `switchyard-store`'s `content.rs`). The archive around them (`switchyard-backup`)
//! adds the manifest, the checksums and the files' bytes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{BackupId, Result, Timestamp};

/// Settings that hold secrets (the access-token signing keys, the key of signed file
/// URLs): left out of a backup unless it is asked to include secrets.
pub const SECRET_SETTINGS: &[&str] = &["auth.jwt_keys", "files.url_key"];

/// Tables that hold secrets as a whole (sessions' refresh-token hashes): left out with
/// the secret settings, so a restored deployment asks everyone to sign in again.
pub const SECRET_TABLES: &[&str] = &["sessions"];

/// What to put in a backup.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Include [`SECRET_SETTINGS`] and [`SECRET_TABLES`].
    pub include_secrets: bool,
    /// Read as fast as the database answers. Without it, each page is followed by a pause
    /// as long as the page took (its read, decoding and hand-over to the writer), so a
    /// backup takes about half the database's time from the servers beside it.
    pub full_speed: bool,
}

/// Rows as they flow out of (or into) a database, table by table, in order.
#[derive(Debug)]
pub enum TableItem {
    /// A new table begins; its rows follow, their values in `columns` order.
    Table { name: String, columns: Vec<String> },
    /// Rows of the current table.
    Rows(Vec<Vec<Value>>),
    /// Every row has come and been checked: an import commits (an import whose input
    /// closes without it rolls back).
    Commit,
}

/// What a snapshot was taken from.
#[derive(Clone, Debug)]
pub struct ExportInfo {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The latest database migration applied (a restore needs at least this one).
    pub schema_version: i64,
}

/// Where a backup a server took stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    Running,
    Succeeded,
    Failed,
    /// Its server stopped while it ran (no sign of life for [`BACKUP_ALIVE_MS`] × 6).
    Interrupted,
    /// Removed from its target to keep only `backup.keep`.
    Deleted,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Running => "running",
            BackupStatus::Succeeded => "succeeded",
            BackupStatus::Failed => "failed",
            BackupStatus::Interrupted => "interrupted",
            BackupStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => BackupStatus::Running,
            "succeeded" => BackupStatus::Succeeded,
            "failed" => BackupStatus::Failed,
            "interrupted" => BackupStatus::Interrupted,
            "deleted" => BackupStatus::Deleted,
            _ => return None,
        })
    }
}

/// How often a running backup records that it is alive.
pub const BACKUP_ALIVE_MS: u64 = 10_000;

/// A backup a server took, or is taking: its record in the database, shared by every
/// server of a deployment (`GET /api/v1/backups`, the backup metrics and alerts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupRecord {
    pub id: BackupId,
    /// The archive's file name.
    pub name: String,
    /// Where it was written: a directory or an `s3://` URL.
    pub target: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub status: BackupStatus,
    pub started_at: Timestamp,
    #[serde(skip)]
    pub alive_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// The archive's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Tasks in the archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A database's side of backup and restore.
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Reads every backed-up table from one consistent snapshot, sending its rows to `out`
    /// as they are read (a closed `out` stops the export with an error).
    async fn export(
        &self,
        options: &ExportOptions,
        out: mpsc::Sender<TableItem>,
    ) -> Result<ExportInfo>;

    /// The latest migration this build knows: archives of a later one are refused.
    fn schema_version(&self) -> i64;

    /// Whether any table a restore writes holds a row (a restore into it needs `force`).
    async fn holds_data(&self) -> Result<bool>;

    /// Replaces the contents of every backed-up table with the rows `input` yields, in one
    /// transaction that commits only at [`TableItem::Commit`]: anything else (an error,
    /// `input` closed early) leaves the database as it was. Returns the rows written.
    async fn import(&self, input: mpsc::Receiver<TableItem>) -> Result<u64>;

    /// Writes a backup's record (new, or its progress: status, sign of life, outcome);
    /// keeps the newest [`MAX_BACKUP_RECORDS`].
    async fn put_backup(&self, record: &BackupRecord) -> Result<()>;

    /// Backup records, newest first. A `running` one without a recent sign of life reads
    /// `interrupted`.
    async fn list_backups(&self, limit: u32) -> Result<Vec<BackupRecord>>;

    /// The newest backup that succeeded (its archive since deleted or not).
    async fn last_backup(&self) -> Result<Option<BackupRecord>>;
}

/// Backup records kept in the database.
pub const MAX_BACKUP_RECORDS: u32 = 1_000;
