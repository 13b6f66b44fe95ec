//! Backup and restore, once for both backends: every table that holds user data, read
//! from one snapshot and written back in one transaction, in the form both backends share
//! (see `switchyard_core::backup`).
//!
//! [`TABLES`] is the catalogue: each table's columns with their logical kind, which says
//! how a value reads from either database and how it goes back into either. A test checks
//! it against the migrated schema of both databases, so a column added by a migration and
//! forgotten here fails the build's tests instead of vanishing from backups.

use std::borrow::Cow;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_core::backup::{
    BACKUP_ALIVE_MS, BackupRecord, BackupStatus, BackupStore, ExportInfo, ExportOptions,
    MAX_BACKUP_RECORDS, SECRET_SETTINGS, SECRET_TABLES, TableItem,
};
use switchyard_core::{BackupId, Error, ErrorCode, Result, Timestamp};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{SqlStore, Tx};
use crate::dialect::Dialect;
use crate::query::{Param, Query};
use crate::rows::{Col, db_err};
use crate::sql::sql;

/// How a column's values are kept, in the databases and in an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `uuid` / a 16-byte blob; text in an archive.
    Uuid,
    Text,
    /// `bigint` / INTEGER.
    Int,
    /// `double precision` / REAL.
    Real,
    /// `boolean` / 0 or 1.
    Bool,
    /// `jsonb` / JSON text; the JSON's text in an archive (so JSON `null` and SQL `NULL`
    /// stay apart).
    Json,
}

/// One backed-up table.
pub(crate) struct Table {
    pub name: &'static str,
    /// The primary key: rows are read in its order, a page at a time.
    pub key: &'static [&'static str],
    pub columns: &'static [(&'static str, Kind)],
    /// Only the rows that satisfy this are backed up (the rest is garbage waiting for
    /// the collector, or derived state).
    pub keep: Option<&'static str>,
    /// Which rows make a database "hold data" (a restore into it needs `--force`).
    pub data: Option<&'static str>,
}

use Kind::{Bool, Int, Json, Real, Text, Uuid as Id};

/// Every backed-up table, in an order that satisfies foreign keys (restores insert in this
/// order and delete in the reverse one).
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "settings",
        key: &["key"],
        columns: &[("key", Text), ("value", Text)],
        // The search cursor is derived: a restore rebuilds the index from the start.
        keep: Some("key <> 'search.cursor'"),
        data: None,
    },
    Table {
        name: "users",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("email", Text),
            ("password_hash", Text),
            ("role", Text),
            ("disabled", Bool),
            ("created_at", Int),
            ("updated_at", Int),
            ("oidc_issuer", Text),
            ("oidc_subject", Text),
        ],
        keep: None,
        data: Some("true"),
    },
    Table {
        name: "api_keys",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("user_id", Id),
            ("name", Text),
            ("prefix", Text),
            ("secret_hash", Text),
            ("scopes", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("last_used_at", Int),
        ],
        keep: None,
        data: Some("true"),
    },
    Table {
        name: "sessions",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("user_id", Id),
            ("created_at", Int),
            ("expires_at", Int),
            ("last_refreshed_at", Int),
            ("user_agent", Text),
            ("ip", Text),
            ("refresh_hash", Text),
            ("used_hashes", Text),
            ("sealed_next", Text),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "agents",
        key: &["name"],
        columns: &[
            ("name", Text),
            ("spec", Text),
            ("builtin", Bool),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        keep: None,
        // The built-in agents every server installs are not data of its own.
        data: Some("NOT builtin"),
    },
    Table {
        name: "schedules",
        key: &["name"],
        columns: &[
            ("name", Text),
            ("spec", Json),
            ("owner_id", Id),
            ("created_at", Int),
            ("updated_at", Int),
            ("next_at", Int),
        ],
        keep: None,
        data: Some("true"),
    },
    Table {
        name: "tasks",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("agent", Text),
            ("status", Text),
            ("priority", Int),
            ("input", Json),
            ("output", Json),
            ("error", Json),
            ("cached", Bool),
            ("owner_id", Id),
            ("idempotency_key", Text),
            ("run_at", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("started_at", Int),
            ("finished_at", Int),
            ("attempt", Int),
            ("attempt_base", Int),
            ("worker_id", Id),
            ("worker_name", Text),
            ("lease_expires_at", Int),
            ("cancel_requested_at", Int),
            ("seq", Int),
            ("parent_id", Id),
            ("fallback_of", Id),
            ("fallback_task_id", Id),
            ("trace_id", Text),
            ("wait", Json),
            ("wait_kind", Text),
            ("flow_key", Text),
            ("fair_key", Text),
            ("schedule", Text),
            ("scheduled_for", Int),
            ("streamed", Int),
            ("stream_cut", Int),
            ("numbered", Int),
        ],
        keep: None,
        data: Some("true"),
    },
    Table {
        name: "task_attempts",
        key: &["task_id", "attempt"],
        columns: &[
            ("task_id", Id),
            ("attempt", Int),
            ("worker_id", Id),
            ("worker_name", Text),
            ("started_at", Int),
            ("finished_at", Int),
            ("status", Text),
            ("error", Json),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "task_logs",
        key: &["task_id", "seq"],
        columns: &[
            ("task_id", Id),
            ("seq", Int),
            ("attempt", Int),
            ("at", Int),
            ("level", Text),
            ("message", Text),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "task_stream",
        key: &["task_id", "n"],
        columns: &[
            ("task_id", Id),
            ("n", Int),
            ("seq", Int),
            ("attempt", Int),
            ("at", Int),
            ("body", Json),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "task_steps",
        key: &["task_id", "name"],
        columns: &[
            ("task_id", Id),
            ("name", Text),
            ("ordinal", Int),
            ("status", Text),
            ("attempt", Int),
            ("output", Json),
            ("error", Json),
            ("started_at", Int),
            ("finished_at", Int),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "task_signals",
        key: &["task_id", "id"],
        columns: &[
            ("task_id", Id),
            ("id", Int),
            ("name", Text),
            ("payload", Json),
            ("sent_at", Int),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "alert_rules",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("spec", Text),
            ("state", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        keep: None,
        data: Some("true"),
    },
    Table {
        name: "alert_events",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("rule_id", Id),
            ("rule_name", Text),
            ("kind", Text),
            ("agent", Text),
            ("state", Text),
            ("value", Real),
            ("threshold", Real),
            ("at", Int),
            ("message", Text),
            ("webhook_url", Text),
            ("notify_status", Text),
            ("notify_attempts", Int),
            ("next_notify_at", Int),
            ("notify_error", Text),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "metric_rollups",
        key: &["resolution_s", "metric", "agent", "bucket", "bucket_start"],
        columns: &[
            ("resolution_s", Int),
            ("metric", Text),
            ("agent", Text),
            ("bucket", Int),
            ("bucket_start", Int),
            ("value", Real),
        ],
        keep: None,
        data: None,
    },
    Table {
        name: "rate_limits",
        key: &["key"],
        columns: &[("key", Text), ("tat", Int), ("paused_until", Int)],
        keep: None,
        data: None,
    },
    Table {
        name: "blobs",
        key: &["sha256"],
        columns: &[
            ("sha256", Text),
            ("object_key", Text),
            ("size", Int),
            ("created_at", Int),
            ("unused_since", Int),
        ],
        // Bytes no file uses any more are the collector's.
        keep: Some("unused_since IS NULL"),
        data: None,
    },
    Table {
        name: "files",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("name", Text),
            ("size", Int),
            ("content_type", Text),
            ("sha256", Text),
            ("owner_id", Id),
            ("task_id", Id),
            ("created_at", Int),
        ],
        keep: None,
        data: Some("true"),
    },
    Table {
        name: "file_usage",
        key: &["owner_key"],
        columns: &[("owner_key", Text), ("bytes", Int)],
        keep: None,
        data: None,
    },
    Table {
        name: "audit_log",
        key: &["id"],
        columns: &[
            ("id", Id),
            ("at", Int),
            ("actor", Text),
            ("actor_user_id", Id),
            ("actor_key_id", Id),
            ("actor_key_name", Text),
            ("action", Text),
            ("target_kind", Text),
            ("target_id", Text),
            ("outcome", Text),
            ("reason", Text),
            ("request_id", Text),
            ("client_addr", Text),
            ("detail", Json),
        ],
        keep: None,
        // The log of a fresh install (its first logins) is not data to protect.
        data: None,
    },
];

/// Rows read per query of an export.
const PAGE: i64 = 2_000;
/// Rows per insert of an import.
const ROWS_PER_INSERT: usize = 2_000;

fn table(name: &str) -> Result<&'static Table> {
    TABLES.iter().find(|t| t.name == name).ok_or_else(|| {
        invalid(format!(
            "the archive holds a table {name:?} this version does not know"
        ))
    })
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::ValidationFailed, message)
}

/// A value as an archive holds it.
fn read_value<R: Col>(row: &R, column: &str, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Id => row
            .opt_uuid(column)?
            .map_or(Value::Null, |u| Value::String(u.to_string())),
        Text => row.opt_string(column)?.map_or(Value::Null, Value::String),
        Int => row.opt_i64(column)?.map_or(Value::Null, Value::from),
        Real => Value::from(row.f64(column)?),
        Bool => Value::Bool(row.boolean(column)?),
        Json => row
            .opt_json_value(column)?
            .map_or(Value::Null, |v| Value::String(v.to_string())),
    })
}

/// Refuses a value from an archive that is not of its column's kind.
fn check(value: &Value, kind: Kind, table: &str, column: &str) -> Result<()> {
    let fits = match (kind, value) {
        (_, Value::Null) => kind != Real,
        (Id, Value::String(s)) => Uuid::parse_str(s).is_ok(),
        (Text, Value::String(_)) => true,
        (Int, Value::Number(n)) => n.is_i64(),
        (Real, Value::Number(_)) => true,
        (Bool, Value::Bool(_)) => true,
        (Json, Value::String(s)) => serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok(),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        // The same message as binding it would give.
        param(value.clone(), kind, table, column).map(|_| ())
    }
}

/// A value from an archive, bound for either database.
fn param(value: Value, kind: Kind, table: &str, column: &str) -> Result<Param<'static>> {
    let wrong = |v: &Value| {
        invalid(format!(
            "{table}.{column}: {v} is not a valid {}",
            match kind {
                Id => "UUID",
                Text => "text",
                Int => "integer",
                Real => "number",
                Bool => "boolean",
                Json => "JSON text",
            }
        ))
    };
    Ok(match (kind, value) {
        (Id, Value::Null) => Param::OptUuid(None),
        (Text, Value::Null) => Param::OptText(None),
        (Int, Value::Null) => Param::OptI64(None),
        (Bool, Value::Null) => Param::OptBool(None),
        (Json, Value::Null) => Param::OptJson(None),
        (Id, Value::String(s)) => {
            Param::OptUuid(Some(Uuid::parse_str(&s).map_err(|_| wrong(&s.into()))?))
        }
        (Text, Value::String(s)) => Param::OptText(Some(Cow::Owned(s))),
        (Int, Value::Number(n)) if n.is_i64() => Param::OptI64(n.as_i64()),
        (Real, Value::Number(n)) => Param::F64(n.as_f64().unwrap_or_default()),
        (Bool, Value::Bool(b)) => Param::OptBool(Some(b)),
        (Json, Value::String(s)) => Param::OptJson(Some(
            serde_json::from_str(&s).map_err(|_| wrong(&s.into()))?,
        )),
        (_, v) => return Err(wrong(&v)),
    })
}

impl<D: Dialect> SqlStore<D> {
    /// Sends one table's rows, a page at a time, in key order.
    async fn export_table(
        tx: &mut Tx<D>,
        table: &Table,
        options: &ExportOptions,
        out: &mpsc::Sender<TableItem>,
    ) -> Result<()> {
        let closed = |_| Error::unavailable("the backup was stopped");
        out.send(TableItem::Table {
            name: table.name.to_owned(),
            columns: table.columns.iter().map(|(c, _)| (*c).to_owned()).collect(),
        })
        .await
        .map_err(closed)?;
        let columns = table
            .columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ");
        let key = table.key.join(", ");
        let mut after: Option<Vec<Param<'static>>> = None;
        loop {
            let mut q = Query::new("");
            q.push(&format!("SELECT {columns} FROM {} WHERE true", table.name));
            if let Some(keep) = table.keep {
                q.push(" AND ").push(keep);
            }
            if table.name == "settings" && !options.include_secrets {
                q.push(" AND key NOT IN ");
                q.push_list(SECRET_SETTINGS.iter().copied());
            }
            if let Some(last) = after.take() {
                q.push(&format!(" AND ({key}) > ("));
                for (i, p) in last.into_iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    q.push_bind(p);
                }
                q.push(")");
            }
            q.push(&format!(" ORDER BY {key} LIMIT ")).push_bind(PAGE);
            let page_started = std::time::Instant::now();
            let rows = q
                .fetch_all(tx.on())
                .await
                .map_err(db_err("read a table for a backup"))?;
            let full = rows.len() as i64 == PAGE;
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut values = Vec::with_capacity(table.columns.len());
                for (column, kind) in table.columns {
                    values.push(read_value(row, column, *kind)?);
                }
                batch.push(values);
            }
            if let Some(last) = batch.last() {
                let mut key = Vec::with_capacity(table.key.len());
                for k in table.key {
                    let i = table.columns.iter().position(|(c, _)| c == k).unwrap_or(0);
                    key.push(param(last[i].clone(), table.columns[i].1, table.name, k)?);
                }
                after = Some(key);
                out.send(TableItem::Rows(batch)).await.map_err(closed)?;
            }
            // The page's whole cost: the read, the decoding, and the wait for the writer
            // (which compresses on a thread of its own).
            if !options.full_speed {
                tokio::time::sleep(page_started.elapsed()).await;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Inserts rows of `table` whose values come in `columns` order: each statement takes
    /// a batch as one JSON parameter that the database takes apart itself (a statement
    /// with a parameter per value costs SQLite time in the square of their number).
    async fn import_rows(
        tx: &mut Tx<D>,
        table: &Table,
        columns: &[(String, Kind)],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64> {
        let names = columns
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let values = columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| D::backup_value(*kind, i))
            .collect::<Vec<_>>()
            .join(", ");
        let (open, close) = D::BACKUP_ROWS;
        let insert = format!(
            "INSERT INTO {} ({names}) SELECT {values} FROM {open}",
            table.name
        );
        for row in &rows {
            if row.len() != columns.len() {
                return Err(invalid(format!(
                    "a row of {} has {} values for {} columns",
                    table.name,
                    row.len(),
                    columns.len()
                )));
            }
            for (value, (column, kind)) in row.iter().zip(columns) {
                check(value, *kind, table.name, column)?;
            }
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            if table.name == "settings" {
                // A restore keeps the target's own secrets unless the archive has them.
                let mut q = Query::new("DELETE FROM settings WHERE key IN ");
                q.push_list(
                    chunk
                        .iter()
                        .map(|r| r.first().and_then(Value::as_str).unwrap_or("").to_owned()),
                );
                q.execute(tx.on())
                    .await
                    .map_err(db_err("restore settings"))?;
            }
            let json =
                serde_json::to_string(chunk).map_err(|e| Error::internal("encode rows", e))?;
            let mut q = Query::new("");
            q.push(&insert).push_bind(json).push(close);
            q.execute(tx.on()).await.map_err(db_err("restore rows"))?;
        }
        Ok(rows.len() as u64)
    }

    /// Empties every table a restore writes, and what derives from them.
    async fn clear_for_import(tx: &mut Tx<D>) -> Result<()> {
        let derived = D::DERIVED_TABLES.iter().copied();
        for name in derived.chain(TABLES.iter().rev().map(|t| t.name)) {
            let mut q = Query::new("");
            q.push(&format!("DELETE FROM {name}"));
            if name == "settings" {
                // The target's secrets stay unless the archive brings its own.
                q.push(" WHERE key NOT IN ");
                q.push_list(SECRET_SETTINGS.iter().copied());
            }
            q.execute(tx.on())
                .await
                .map_err(db_err("clear a table for a restore"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> BackupStore for SqlStore<D> {
    async fn export(
        &self,
        options: &ExportOptions,
        out: mpsc::Sender<TableItem>,
    ) -> Result<ExportInfo> {
        let mut tx = Tx(self.dialect.begin_snapshot().await?);
        // The first read fixes the snapshot.
        let row: D::Row = Query::new("SELECT max(version) FROM _sqlx_migrations")
            .fetch_one(tx.on())
            .await
            .map_err(db_err("read the schema version"))?;
        let schema_version = row.i64_at(0)?;
        if schema_version != self.schema_version() {
            return Err(Error::new(
                ErrorCode::InvalidState,
                format!(
                    "the database is at schema version {schema_version} and this Switchyard's \
                     is {}: back it up with the version its servers run",
                    self.schema_version()
                ),
            ));
        }
        for table in TABLES {
            if !options.include_secrets && SECRET_TABLES.contains(&table.name) {
                continue;
            }
            Self::export_table(&mut tx, table, options, &out).await?;
        }
        tx.rollback().await.map_err(db_err("end snapshot"))?;
        Ok(ExportInfo {
            backend: D::BACKEND,
            schema_version,
        })
    }

    fn schema_version(&self) -> i64 {
        D::migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    async fn holds_data(&self) -> Result<bool> {
        for table in TABLES {
            let Some(data) = table.data else { continue };
            let mut q = Query::new("");
            q.push(&format!(
                "SELECT 1 FROM {} WHERE {data} LIMIT 1",
                table.name
            ));
            if q.fetch_optional(self.fresh_reader())
                .await
                .map_err(db_err("look for data"))?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn import(&self, mut input: mpsc::Receiver<TableItem>) -> Result<u64> {
        let mut tx = self.begin_write(true).await?;
        Self::clear_for_import(&mut tx).await?;
        let mut current: Option<(&'static Table, Vec<(String, Kind)>)> = None;
        let mut written = 0;
        while let Some(item) = input.recv().await {
            match item {
                TableItem::Table { name, columns } => {
                    let table = table(&name)?;
                    let mut known = Vec::with_capacity(columns.len());
                    for c in columns {
                        let Some((_, kind)) = table.columns.iter().find(|(k, _)| *k == c) else {
                            return Err(invalid(format!(
                                "the archive's {name} table has a column {c:?} this version \
                                 does not know: restore it with the Switchyard that wrote it, \
                                 or a later one"
                            )));
                        };
                        known.push((c, *kind));
                    }
                    current = Some((table, known));
                }
                TableItem::Rows(rows) => {
                    let Some((table, columns)) = &current else {
                        return Err(invalid("rows before any table".into()));
                    };
                    written += Self::import_rows(&mut tx, table, columns, rows).await?;
                }
                TableItem::Commit => {
                    tx.commit().await.map_err(db_err("commit the restore"))?;
                    return Ok(written);
                }
            }
        }
        tx.rollback()
            .await
            .map_err(db_err("roll back the restore"))?;
        Err(Error::unavailable(
            "the restore stopped before the end of the archive; nothing was changed",
        ))
    }

    async fn put_backup(&self, b: &BackupRecord) -> Result<()> {
        let int = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        Query::new(sql!("common", "put_backup"))
            .bind(b.id.0)
            .bind(b.name.as_str())
            .bind(b.target.as_str())
            .bind(b.trigger.as_str())
            .bind(b.status.as_str())
            .bind(b.started_at.millis())
            .bind(b.alive_at.millis())
            .bind(b.finished_at.map(|t| t.millis()))
            .bind(int(b.size_bytes))
            .bind(int(b.tasks))
            .bind(b.error.as_deref())
            .execute(self.writer())
            .await
            .map_err(db_err("record a backup"))?;
        if b.status != BackupStatus::Running {
            Query::new(sql!("common", "prune_backups"))
                .bind(i64::from(MAX_BACKUP_RECORDS))
                .execute(self.writer())
                .await
                .map_err(db_err("prune backup records"))?;
        }
        Ok(())
    }

    async fn list_backups(&self, limit: u32) -> Result<Vec<BackupRecord>> {
        let rows = Query::new(sql!("common", "list_backups"))
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list backups"))?;
        let now = Timestamp::now();
        rows.iter().map(|r| backup_record(r, now)).collect()
    }

    async fn last_backup(&self) -> Result<Option<BackupRecord>> {
        Query::new(sql!("common", "last_backup"))
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("last backup"))?
            .map(|r| backup_record(&r, Timestamp::now()))
            .transpose()
    }
}

/// A backup's record from its row; a `running` one silent since well before `now` reads
/// `interrupted`.
fn backup_record<R: Col>(r: &R, now: Timestamp) -> Result<BackupRecord> {
    let count = |n: Option<i64>| n.map(|n| u64::try_from(n).unwrap_or(0));
    let alive_at = r.ts("alive_at")?;
    let mut status = BackupStatus::parse(&r.string("status")?).unwrap_or(BackupStatus::Failed);
    if status == BackupStatus::Running && alive_at < now.minus_ms(BACKUP_ALIVE_MS * 6) {
        status = BackupStatus::Interrupted;
    }
    Ok(BackupRecord {
        id: BackupId(r.uuid("id")?),
        name: r.string("name")?,
        target: r.string("target")?,
        trigger: r.string("trigger")?,
        status,
        started_at: r.ts("started_at")?,
        alive_at,
        finished_at: r.opt_ts("finished_at")?,
        size_bytes: count(r.opt_i64("size_bytes")?),
        tasks: count(r.opt_i64("tasks")?),
        error: r.opt_string("error")?,
    })
}

/// Tables no backup holds: derived state, and state of processes that are gone.
#[cfg(feature = "testing")]
const NOT_BACKED_UP: &[&str] = &[
    "_sqlx_migrations",
    "backups",
    "bus_messages",
    "sqlite_sequence",
    "task_search",
    "task_search_docs",
    "uploads",
    "workers",
];

#[cfg(feature = "testing")]
impl<D: Dialect> SqlStore<D> {
    /// Compares [`TABLES`] with the migrated schema: every column of every table is in
    /// the catalogue, or its table is one no backup holds. The differences, if any.
    pub async fn backup_catalogue_gaps(&self) -> Result<Vec<String>> {
        let sql = if D::BACKEND == "sqlite" {
            "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'task_search_%'"
        } else {
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema()"
        };
        let rows = Query::new(sql)
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("read the schema"))?;
        let mut in_schema = std::collections::BTreeSet::new();
        for r in &rows {
            let table = r.string_at(0)?;
            if !NOT_BACKED_UP.contains(&table.as_str()) {
                in_schema.insert((table, r.string_at(1)?));
            }
        }
        let catalogue: std::collections::BTreeSet<(String, String)> = TABLES
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .map(|(c, _)| (t.name.to_owned(), (*c).to_owned()))
            })
            .collect();
        let mut gaps: Vec<String> = in_schema
            .difference(&catalogue)
            .map(|(t, c)| format!("{t}.{c} is in the schema but no backup holds it"))
            .collect();
        gaps.extend(
            catalogue
                .difference(&in_schema)
                .map(|(t, c)| format!("{t}.{c} is in the catalogue but not the schema")),
        );
        Ok(gaps)
    }
}
