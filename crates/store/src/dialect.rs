//! The seam between the store written once ([`SqlStore`](crate::sql_store::SqlStore)) and
//! the two databases: a [`Dialect`] is one backend's pools, its way of running a
//! [`Query`], its own statements, and the hooks of the hot path (insert, claim, complete,
//! event numbering, log lines) that each backend writes its own way for speed. Each
//! backend lives in a folder of its own (`sqlite/`, `postgres/`), like the drivers of
//! River's `riverdriver` interface.
//!
//! The trait and the types in its signatures are `pub` in private modules: the public
//! `SqliteStore` and `PgStore` name their dialects, but no other crate can name the trait,
//! so none can implement or call it.

use std::collections::HashSet;

use async_trait::async_trait;
use switchyard_core::Result;
use switchyard_core::TaskId;
use switchyard_core::store::{ClaimRequest, ClaimedTask, Completion, KeyQuota, NewTask, PoolStats};
use switchyard_core::store::{Synced, Transition};
use switchyard_core::task::Attempt;
use uuid::Uuid;

use crate::calls::Calls;
use crate::query::Query;
use crate::rows::Col;

/// A connection of the dialect's database (inside a transaction, or taken from a pool).
pub type Conn<D> = <<D as Dialect>::Db as sqlx::Database>::Connection;
/// A pool of the dialect's database.
pub type Pool<D> = sqlx::Pool<<D as Dialect>::Db>;
/// A transaction of the dialect's database.
pub type Transaction<D> = sqlx::Transaction<'static, <D as Dialect>::Db>;

/// A pool's figures for `MonitoringStore::pool_stats`, whatever its database.
pub fn pool_stats<DB: sqlx::Database>(pool: &'static str, p: &sqlx::Pool<DB>) -> PoolStats {
    PoolStats {
        pool,
        size: p.size(),
        idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
        max: p.options().get_max_connections(),
    }
}

/// Where a [`Query`] runs: on a pool (any of its connections), or on one connection.
pub enum On<'a, D: Dialect> {
    Pool(&'a Pool<D>),
    Conn(&'a mut Conn<D>),
}

/// The statements whose text differs per dialect, beyond the hooks' own (their files have
/// the same name under `sql/sqlite` and `sql/postgres`).
pub struct Statements {
    pub extend_leases: &'static str,
    /// The session row, locked for a refresh (`FOR UPDATE` where there is row locking).
    pub lock_session: &'static str,
    /// Frees an idempotency key older than the window (through the index).
    pub clear_stale_idempotency: &'static str,
    /// The task holding an idempotency key (through the index).
    pub find_by_idempotency: &'static str,
    /// A task's row, locked for a wait or a signal.
    pub lock_task: &'static str,
    /// A blob's row, locked before the collector deletes it.
    pub lock_blob: &'static str,
    /// Waits whose time is up (skipping rows another server is resuming, where it can).
    pub due_waits: &'static str,
    pub add_metric_points: &'static str,
    pub set_metric_gauges: &'static str,
    pub downsample_metrics: &'static str,
    pub search_logs: &'static str,
    pub search_finished: &'static str,
    /// Running attempts past their agent's timeout (a JSON object of agent → time).
    pub timed_out_attempts: &'static str,
    /// Language-model usage per agent over a period (JSON paths differ).
    pub report_usage: &'static str,
}

/// What a backend provides to the shared store: see the module documentation.
///
/// Pools are counted: `writer()`, `reader()` and `fresh_reader()` each count the database
/// call the caller is about to make (see [`Calls`]).
#[async_trait]
pub trait Dialect: Send + Sync + Sized + 'static {
    /// The sqlx database.
    type Db: sqlx::Database<Row = Self::Row>;
    /// Its row type, read through [`Col`].
    type Row: Col + Send + Sync;

    /// `Store::backend()`: `"sqlite"` or `"postgres"`.
    const BACKEND: &'static str;
    /// The statements of this dialect that the shared code runs.
    const SQL: Statements;
    /// How a restore's insert reads a batch of rows given as one JSON parameter (an array
    /// of arrays): the text before and after the parameter in its `FROM` clause…
    const BACKUP_ROWS: (&'static str, &'static str);
    /// …and the expression for value `index` of a row, as a column of `kind`.
    fn backup_value(kind: crate::sql_store::backup::Kind, index: usize) -> String;
    /// Tables a restore empties without filling: state derived from the restored tables
    /// (the search index) or bound to processes that are gone (workers, uploads).
    const DERIVED_TABLES: &'static [&'static str];

    /// Database round trips so far.
    fn calls(&self) -> &Calls;
    /// The pool for writes.
    fn writer(&self) -> &Pool<Self>;
    /// A pool for read-heavy queries that may lag behind the latest commit.
    fn reader(&self) -> &Pool<Self>;
    /// A pool for reads that must see every committed write.
    fn fresh_reader(&self) -> &Pool<Self>;
    /// The pools' figures, for `MonitoringStore::pool_stats`.
    fn pools(&self) -> Vec<PoolStats>;

    /// A write transaction; `durable` ones are on disk when they commit.
    async fn begin_write(&self, durable: bool) -> Result<Transaction<Self>>;
    /// A write transaction of the task path (claims, completions, events).
    async fn begin_task_path(&self) -> Result<Transaction<Self>>;
    /// A write transaction that is durable once [`Dialect::flushed`], asked for after its
    /// commit, resolves: many small writes (steps, waits, signals) share their flushes
    /// instead of each flushing inside its commit.
    async fn begin_flushed(&self) -> Result<Transaction<Self>>;
    /// Resolves once every transaction committed before the call is on disk.
    fn flushed(&self) -> Synced;
    /// A read-only transaction that sees one consistent snapshot of the database for as
    /// long as it lasts, without holding writers back (for backups).
    async fn begin_snapshot(&self) -> Result<Transaction<Self>>;
    /// The migrations this build applies.
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// Runs `query`: every row.
    async fn fetch_all(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Vec<Self::Row>>;
    /// Runs `query`: its first row, if any.
    async fn fetch_optional(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Option<Self::Row>>;
    /// Runs `query`: its first row.
    async fn fetch_one(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Self::Row>;
    /// Runs `query`: the rows it changed.
    async fn execute(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<u64>;

    /// Inserts a batch of fresh tasks (no idempotency keys) as one transaction; the
    /// returned future resolves once it is durable.
    async fn insert_batch_atomic(&self, batch: &[NewTask]) -> Result<Synced>;
    /// Inserts tasks in `tx`, skipping those whose idempotency key (or id) exists; the ids
    /// inserted.
    async fn insert_batch(&self, tx: &mut Conn<Self>, batch: &[NewTask]) -> Result<HashSet<Uuid>>;
    /// Claims each key's quota of runnable tasks of `agent` as one transaction.
    async fn claim_keys_atomic(
        &self,
        req: &ClaimRequest,
        agent: &str,
        keys: &[KeyQuota],
    ) -> Result<Vec<ClaimedTask>>;
    /// Claims each key's quota of runnable tasks of `agent` in `tx`.
    async fn claim_keys(
        &self,
        tx: &mut Conn<Self>,
        req: &ClaimRequest,
        agent: &str,
        keys: &[KeyQuota],
    ) -> Result<Vec<ClaimedTask>>;
    /// Serialises claims of `agent` until `tx` ends (for its concurrency limit).
    async fn lock_agent(&self, tx: &mut Conn<Self>, agent: &str) -> Result<()>;
    /// Records a batch of completions (one per task) as one transaction.
    async fn complete_batch_atomic(&self, batch: &[&Completion]) -> Result<Vec<Transition>>;
    /// Records a batch of completions (one per task) in `tx`.
    async fn complete_batch(
        &self,
        tx: &mut Conn<Self>,
        batch: &[&Completion],
    ) -> Result<Vec<Transition>>;
    /// Reserves blocks of event numbers (`batch::number_asks`) for running attempts:
    /// per attempt granted one, the block's last number, its agent and owner.
    async fn reserve_numbers(
        &self,
        tx: &mut Conn<Self>,
        json: String,
    ) -> Result<Vec<crate::rows::ReservedNumbers>>;
    /// Counts events being stored (`batch::stored_counts`) in their tasks: per task
    /// still there, how many stream events it has had.
    async fn count_events(&self, tx: &mut Conn<Self>, json: String) -> Result<Vec<(TaskId, u64)>>;
    /// Inserts log lines (a JSON array) in `tx`.
    async fn insert_logs(&self, tx: &mut Conn<Self>, json: String) -> Result<()>;
    /// Inserts numbered stream events in `tx` (rows already there are skipped).
    async fn insert_stream(
        &self,
        tx: &mut Conn<Self>,
        rows: &[crate::batch::StreamRow],
    ) -> Result<()>;
    /// The recorded attempts of these tasks, ordered by task and attempt.
    async fn attempts_for(&self, ids: &[TaskId]) -> Result<Vec<(TaskId, Attempt)>>;

    /// The subquery selecting the ids of tasks matching a full-text query, as the text
    /// before and after its bound parameter.
    fn search_filter() -> (&'static str, &'static str);
    /// A full-text query of `terms` (letters and digits only) in the dialect's syntax.
    fn search_query(terms: &[String]) -> String;
    /// Writes tasks' search documents: `(task, finished, document)`.
    async fn write_search_documents(
        conn: &mut Conn<Self>,
        documents: &[(TaskId, bool, String)],
    ) -> Result<()>;
}
