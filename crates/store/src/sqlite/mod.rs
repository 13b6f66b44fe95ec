//! The embedded backend: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time, so writes go through a single connection (no
//! `SQLITE_BUSY` storms, and batching upstream makes each write transaction count),
//! while reads use a small pool of read-only connections that WAL lets run alongside.

mod values;
mod wal_sync;

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use uuid::Uuid;

use crate::batch::hex_id;
use crate::calls::Calls;
use crate::dialect::{Dialect, On, Statements, pool_stats};
use crate::query::Query;
use crate::rows::db_err;
use crate::sql::sql;
use crate::sql_store::SqlStore;
use switchyard_core::store::{
    ClaimRequest, ClaimedTask, Completion, KeyQuota, NewTask, PoolStats, Store, Synced, Transition,
    already_synced,
};
use switchyard_core::task::Attempt;
use switchyard_core::{Error, Result, TaskId};
use values::{Completions, Insert};
use wal_sync::WalSync;

/// How hard acknowledged commits push data to disk.
///
/// Commits that answer a client (submissions, cancellations, replays, agents, users) are
/// the durable ones; the queue's own bookkeeping (claims, completions, live events) always
/// commits with `synchronous = NORMAL`: WAL order means a later durable commit fsyncs
/// everything before it, and a lost claim or completion only re-runs a task
/// (at-least-once), never loses one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Acknowledged commits fsync the WAL: they survive power loss.
    #[default]
    Full,
    /// No fsync on commit (only at checkpoints): survives a killed process, may lose the
    /// last commits on power loss.
    Normal,
}

/// One write transaction as a single multi-statement command: the statements of the
/// named SQLite files between `BEGIN IMMEDIATE` and `COMMIT`, with the transaction's
/// `synchronous` level first. Every statement sees the same `$N` parameters.
macro_rules! in_one_trip {
    ($sync:literal, $($name:literal),+) => {
        concat!(
            "PRAGMA synchronous = ", $sync, ";\nBEGIN IMMEDIATE;\n",
            $(sql!("sqlite", $name), ";\n",)+
            "COMMIT"
        )
    };
}

/// `claim_tasks.sql`'s parameters: every key's share as one JSON array.
fn claim_query<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    req: &'q ClaimRequest,
    agent: &'q str,
    keys: &[KeyQuota],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let quotas: Vec<Value> = keys
        .iter()
        .map(|k| json!([k.fair_key, k.priority, k.max]))
        .collect();
    query
        .bind(req.worker_id.0)
        .bind(req.worker_name.as_str())
        .bind(req.now.plus_ms(req.lease_ms).millis())
        .bind(req.now.millis())
        .bind(agent)
        .bind(Value::Array(quotas).to_string())
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The embedded store: [`SqlStore`] on SQLite.
pub type SqliteStore = SqlStore<SqliteDialect>;

/// SQLite's pools and hooks (see [`Dialect`]).
pub struct SqliteDialect {
    writer: SqlitePool,
    reader: SqlitePool,
    durability: Durability,
    /// Flushes the WAL for inserts committed without `synchronous = FULL`.
    wal_sync: WalSync,
    calls: Calls,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let base = SqliteConnectOptions::from_str(&url)
            .map_err(|e| Error::internal("invalid SQLite path", e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000")
            .statement_cache_capacity(128);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // A batch's rows come back without the writer thread waiting for the reader.
            .connect_with(base.clone().row_buffer_size(4096))
            .await
            .map_err(db_err("open SQLite database"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(db_err("open SQLite database for reading"))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(SqlStore::new(SqliteDialect {
            writer,
            reader,
            durability,
            wal_sync: WalSync::start(wal.into()),
            calls: Default::default(),
        }))
    }
}

impl SqliteDialect {
    /// Runs a whole write transaction (`BEGIN IMMEDIATE; …; COMMIT`, see [`in_one_trip`])
    /// as one command to the writer connection: no round trip between its statements, so
    /// the write lock is held only while SQLite works. A failure rolls back on the same
    /// connection before it goes back to the pool.
    async fn one_trip<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        context: &'static str,
    ) -> Result<Vec<SqliteRow>> {
        self.calls.add(1);
        let mut conn = self.writer.acquire().await.map_err(db_err("acquire"))?;
        match query.fetch_all(&mut *conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                // Not in a transaction any more (SQLite rolled back itself) is fine too.
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                Err(db_err(context)(e))
            }
        }
    }

    /// `batch` in statements of at most [`values::CHUNK`] rows, in the transaction `tx`;
    /// the rows they return.
    async fn insert_chunks(
        &self,
        tx: &mut SqliteConnection,
        kind: Insert,
        batch: &[NewTask],
    ) -> Result<Vec<SqliteRow>> {
        let mut rows = Vec::new();
        for chunk in batch.chunks(values::CHUNK) {
            self.calls.add(1);
            rows.extend(
                values::insert(kind, chunk)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err("insert tasks"))?,
            );
        }
        Ok(rows)
    }
}

#[async_trait]
impl Dialect for SqliteDialect {
    type Db = sqlx::Sqlite;
    type Row = SqliteRow;

    const BACKEND: &'static str = "sqlite";
    const BACKUP_ROWS: (&'static str, &'static str) = ("json_each(", ") AS r");
    const DERIVED_TABLES: &'static [&'static str] =
        &["task_search", "task_search_docs", "workers", "uploads"];
    const SQL: Statements = Statements {
        extend_leases: sql!("sqlite", "extend_leases"),
        lock_session: sql!("sqlite", "lock_session"),
        clear_stale_idempotency: sql!("sqlite", "clear_stale_idempotency"),
        find_by_idempotency: sql!("sqlite", "find_by_idempotency"),
        lock_task: sql!("sqlite", "lock_task"),
        lock_blob: sql!("sqlite", "lock_blob"),
        due_waits: sql!("sqlite", "due_waits"),
        add_metric_points: sql!("sqlite", "add_metric_points"),
        set_metric_gauges: sql!("sqlite", "set_metric_gauges"),
        downsample_metrics: sql!("sqlite", "downsample_metrics"),
        search_logs: sql!("sqlite", "search_logs"),
        search_finished: sql!("sqlite", "search_finished"),
        timed_out_attempts: sql!("sqlite", "timed_out_attempts"),
        report_usage: sql!("sqlite", "report_usage"),
    };

    fn calls(&self) -> &Calls {
        &self.calls
    }

    fn writer(&self) -> &SqlitePool {
        self.calls.add(1);
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        self.calls.add(1);
        &self.reader
    }

    /// WAL readers see every committed write, without waiting for the writer.
    fn fresh_reader(&self) -> &SqlitePool {
        self.calls.add(1);
        &self.reader
    }

    fn pools(&self) -> Vec<PoolStats> {
        vec![
            pool_stats("writer", &self.writer),
            pool_stats("reader", &self.reader),
        ]
    }

    /// `durable` ones fsync on commit when `Durability::Full`. `BEGIN IMMEDIATE` takes the
    /// write lock up front (there is one writer anyway).
    async fn begin_write(&self, durable: bool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.calls.add(2);
        let begin = if durable && self.durability == Durability::Full {
            "PRAGMA synchronous = FULL; BEGIN IMMEDIATE"
        } else {
            "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE"
        };
        self.writer.begin_with(begin).await.map_err(db_err("begin"))
    }

    /// Not flushed on commit (`begin_write(false)`); PostgreSQL runs these on connections
    /// of their own.
    async fn begin_task_path(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_write(false).await
    }

    /// Committed without flushing; [`Dialect::flushed`] waits for the WAL flusher, outside
    /// the write lock (see [`WalSync`]).
    async fn begin_flushed(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_write(false).await
    }

    fn flushed(&self) -> Synced {
        match self.durability {
            Durability::Full => self.wal_sync.after_commit(),
            Durability::Normal => already_synced(),
        }
    }

    /// A deferred transaction on a read-only connection: in WAL mode its first read fixes
    /// the snapshot it sees, and writers go on beside it.
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.calls.add(1);
        self.reader.begin().await.map_err(db_err("begin snapshot"))
    }

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// `->>` gives SQL values: integers, reals, text (a JSON column's text stays text),
    /// 1 or 0 for booleans; UUIDs are stored as 16-byte blobs.
    fn backup_value(kind: crate::sql_store::backup::Kind, index: usize) -> String {
        match kind {
            crate::sql_store::backup::Kind::Uuid => {
                format!("unhex(replace(r.value ->> '$[{index}]', '-', ''))")
            }
            _ => format!("r.value ->> '$[{index}]'"),
        }
    }

    async fn fetch_all(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Vec<SqliteRow>> {
        let query = query.into_sqlx::<sqlx::Sqlite>();
        match on {
            On::Pool(pool) => query.fetch_all(pool).await,
            On::Conn(conn) => query.fetch_all(conn).await,
        }
    }

    async fn fetch_optional(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Option<SqliteRow>> {
        let query = query.into_sqlx::<sqlx::Sqlite>();
        match on {
            On::Pool(pool) => query.fetch_optional(pool).await,
            On::Conn(conn) => query.fetch_optional(conn).await,
        }
    }

    async fn fetch_one(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<SqliteRow> {
        let query = query.into_sqlx::<sqlx::Sqlite>();
        match on {
            On::Pool(pool) => query.fetch_one(pool).await,
            On::Conn(conn) => query.fetch_one(conn).await,
        }
    }

    async fn execute(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<u64> {
        let query = query.into_sqlx::<sqlx::Sqlite>();
        let done = match on {
            On::Pool(pool) => query.execute(pool).await?,
            On::Conn(conn) => query.execute(conn).await?,
        };
        Ok(done.rows_affected())
    }

    /// Commits without flushing; with `Durability::Full`, the returned future resolves
    /// once the WAL flusher has made the commit durable (see [`WalSync`]). Up to
    /// [`values::CHUNK`] tasks are one command; more, one transaction of several.
    async fn insert_batch_atomic(&self, batch: &[NewTask]) -> Result<Synced> {
        if batch.len() <= values::CHUNK {
            self.one_trip(values::insert(Insert::OneTrip, batch), "insert tasks")
                .await?;
        } else {
            let mut tx = self.begin_task_path().await?;
            self.insert_chunks(&mut tx, Insert::Plain, batch).await?;
            tx.commit().await.map_err(db_err("commit insert"))?;
        }
        Ok(self.flushed())
    }

    async fn insert_batch(
        &self,
        tx: &mut SqliteConnection,
        batch: &[NewTask],
    ) -> Result<HashSet<Uuid>> {
        let rows = self.insert_chunks(tx, Insert::OrSkip, batch).await?;
        rows.iter()
            .map(|r| sqlx::Row::try_get::<Uuid, _>(r, 0).map_err(db_err("insert tasks")))
            .collect()
    }

    async fn claim_keys_atomic(
        &self,
        req: &ClaimRequest,
        agent: &str,
        keys: &[KeyQuota],
    ) -> Result<Vec<ClaimedTask>> {
        let query = claim_query(
            sqlx::query(in_one_trip!("NORMAL", "claim_tasks")),
            req,
            agent,
            keys,
        );
        let rows = self.one_trip(query, "claim tasks").await?;
        rows.iter().map(crate::rows::claimed).collect()
    }

    async fn claim_keys(
        &self,
        tx: &mut SqliteConnection,
        req: &ClaimRequest,
        agent: &str,
        keys: &[KeyQuota],
    ) -> Result<Vec<ClaimedTask>> {
        self.calls.add(1);
        let rows = claim_query(sqlx::query(sql!("sqlite", "claim_tasks")), req, agent, keys)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("claim tasks"))?;
        rows.iter().map(crate::rows::claimed).collect()
    }

    async fn lock_agent(&self, _tx: &mut SqliteConnection, _agent: &str) -> Result<()> {
        // The single writer connection already serialises every claim.
        Ok(())
    }

    /// Up to [`values::CHUNK`] completions are one command; more, one transaction of
    /// several.
    async fn complete_batch_atomic(&self, batch: &[&Completion]) -> Result<Vec<Transition>> {
        if batch.len() > values::CHUNK {
            let mut tx = self.begin_task_path().await?;
            let done = self.complete_batch(&mut tx, batch).await?;
            tx.commit().await.map_err(db_err("commit completions"))?;
            return Ok(done);
        }
        let query = values::complete(Completions::OneTrip, batch);
        let rows = self.one_trip(query, "complete tasks").await?;
        rows.iter().map(crate::rows::transition).collect()
    }

    async fn complete_batch(
        &self,
        tx: &mut SqliteConnection,
        batch: &[&Completion],
    ) -> Result<Vec<Transition>> {
        let mut done = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(values::CHUNK) {
            self.calls.add(2);
            values::complete(Completions::RecordAttempts, chunk)
                .execute(&mut *tx)
                .await
                .map_err(db_err("record attempts"))?;
            let rows = values::complete(Completions::Update, chunk)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err("complete tasks"))?;
            for r in &rows {
                done.push(crate::rows::transition(r)?);
            }
        }
        Ok(done)
    }

    async fn reserve_numbers(
        &self,
        tx: &mut SqliteConnection,
        json: String,
    ) -> Result<Vec<crate::rows::ReservedNumbers>> {
        self.calls.add(1);
        let rows = sqlx::query(sql!("sqlite", "reserve_numbers"))
            .bind(json)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("reserve event numbers"))?;
        rows.iter().map(crate::rows::reserved_numbers).collect()
    }

    async fn count_events(
        &self,
        tx: &mut SqliteConnection,
        json: String,
    ) -> Result<Vec<(TaskId, u64)>> {
        self.calls.add(1);
        let rows = sqlx::query(sql!("sqlite", "count_events"))
            .bind(json)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("count stored events"))?;
        rows.iter().map(crate::rows::stream_count).collect()
    }

    async fn insert_logs(&self, tx: &mut SqliteConnection, json: String) -> Result<()> {
        self.calls.add(1);
        sqlx::query(sql!("sqlite", "insert_logs"))
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(db_err("insert task logs"))?;
        Ok(())
    }

    async fn insert_stream(
        &self,
        tx: &mut SqliteConnection,
        rows: &[crate::batch::StreamRow],
    ) -> Result<()> {
        for chunk in rows.chunks(values::CHUNK) {
            self.calls.add(1);
            values::insert_stream(chunk)
                .execute(&mut *tx)
                .await
                .map_err(db_err("insert task stream events"))?;
        }
        Ok(())
    }

    async fn attempts_for(&self, ids: &[TaskId]) -> Result<Vec<(TaskId, Attempt)>> {
        let json = Value::Array(ids.iter().map(|id| hex_id(&id.0).into()).collect());
        let rows = sqlx::query(sql!("sqlite", "attempts_for_tasks"))
            .bind(json.to_string())
            .fetch_all(Dialect::reader(self))
            .await
            .map_err(db_err("attempts for tasks"))?;
        rows.iter().map(crate::rows::attempt).collect()
    }

    fn search_filter() -> (&'static str, &'static str) {
        (
            "SELECT d.task_id FROM task_search JOIN task_search_docs AS d \
             ON d.doc = task_search.rowid WHERE task_search MATCH ",
            "",
        )
    }

    /// FTS5 phrases, one per term (all must match).
    fn search_query(terms: &[String]) -> String {
        terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The FTS5 table keeps the text; `task_search_docs` maps a task to its row.
    async fn write_search_documents(
        conn: &mut SqliteConnection,
        documents: &[(TaskId, bool, String)],
    ) -> Result<()> {
        let ids = Value::Array(
            documents
                .iter()
                .map(|(id, _, _)| hex_id(&id.0).into())
                .collect(),
        )
        .to_string();
        sqlx::query(sql!("sqlite", "search_forget"))
            .bind(&ids)
            .execute(&mut *conn)
            .await
            .map_err(db_err("search forget"))?;
        let docs = Value::Array(
            documents
                .iter()
                .map(|(id, complete, _)| {
                    json!({"id": hex_id(&id.0), "complete": i32::from(*complete)})
                })
                .collect(),
        )
        .to_string();
        sqlx::query(sql!("sqlite", "search_docs"))
            .bind(docs)
            .execute(&mut *conn)
            .await
            .map_err(db_err("search docs"))?;
        let bodies = Value::Array(
            documents
                .iter()
                .map(|(id, _, body)| json!({"id": hex_id(&id.0), "body": body}))
                .collect(),
        )
        .to_string();
        sqlx::query(sql!("sqlite", "search_write"))
            .bind(bodies)
            .execute(&mut *conn)
            .await
            .map_err(db_err("search write"))?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        SqliteDialect::BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.dialect.reader)
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.dialect.writer)
            .await
            .map_err(|e| Error::internal("SQLite migration failed", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::Timestamp;
    use switchyard_core::store::{SettingsStore, TaskStore};

    #[tokio::test]
    async fn a_failed_one_trip_transaction_leaves_the_writer_usable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), Durability::Full)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let failing = sqlx::query(
            "BEGIN IMMEDIATE; INSERT INTO settings (key, value) VALUES ('a', 'b'); \
             SELECT * FROM no_such_table; COMMIT",
        );
        assert!(store.dialect.one_trip(failing, "test").await.is_err());
        let before = store.get_setting("a").await.unwrap();
        assert_eq!(before, None, "the failed transaction was rolled back");
        let task = crate::conformance::new_task("echo", 0, Timestamp::now());
        let out = store
            .insert_tasks(vec![task.clone()], Timestamp::EPOCH)
            .await
            .expect("the next transaction starts cleanly");
        assert_eq!(out.len(), 1);
        assert!(store.get_task(task.id).await.unwrap().is_some());
    }
}
