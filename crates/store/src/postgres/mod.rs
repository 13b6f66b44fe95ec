//! The production backend: PostgreSQL, with an optional streaming replica for reads.
//!
//! Writes, and every read that must see its own writes, go to the primary pool; list,
//! log, statistics and worker-registry queries go to the replica pool when one is
//! configured. Claims lock with `FOR UPDATE SKIP LOCKED`, so any number of dispatchers
//! on any number of processes claim disjoint batches without waiting on each other.
//!
//! Besides the `Store`, the module offers the two cluster services that PostgreSQL
//! gives for free: an event bus over LISTEN/NOTIFY ([`PgBus`]) and leader election over
//! a session advisory lock ([`PgLeadership`]).

mod bus;
mod kept;
mod leader;

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use uuid::Uuid;

use crate::batch::hex_id;
use crate::calls::Calls;
use crate::dialect::{Dialect, On, Statements, pool_stats};
use crate::query::Query;
use crate::rows::db_err;
use crate::sql::{insert_or_skip, sql};
use crate::sql_store::SqlStore;
use switchyard_core::store::{
    ClaimRequest, ClaimedTask, Completion, KeyQuota, NewTask, PoolStats, Store, Synced, Transition,
    already_synced,
};
use switchyard_core::task::Attempt;
use switchyard_core::{Error, Result, TaskId};

pub use bus::PgBus;
pub use leader::PgLeadership;

/// How to reach PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// `postgres://user:password@host:port/database` of the primary.
    pub url: String,
    /// A streaming replica for read-heavy queries (lists, logs, statistics).
    pub replica_url: Option<String>,
    /// Most connections per pool (primary and replica each).
    pub max_connections: u32,
    /// Tables live in this schema (`search_path`) instead of the default; tests use it to
    /// isolate themselves inside one database.
    pub schema: Option<String>,
}

impl PgSettings {
    pub fn new(url: impl Into<String>) -> Self {
        PgSettings {
            url: url.into(),
            replica_url: None,
            max_connections: 16,
            schema: None,
        }
    }

    fn options(&self, url: &str) -> Result<PgConnectOptions> {
        // The parse error would quote the URL (and its password): keep it out.
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|_| Error::internal_msg("database.url is not a valid postgres:// URL"))?
            .application_name("switchyard")
            .statement_cache_capacity(256);
        if let Some(schema) = &self.schema {
            options = options.options([("search_path", schema.as_str())]);
        }
        Ok(options)
    }

    pub(crate) fn primary_options(&self) -> Result<PgConnectOptions> {
        self.options(&self.url)
    }

    /// The primary, for the task path's statements: with [`POINT_PLANS`].
    pub fn task_path_options(&self) -> Result<PgConnectOptions> {
        Ok(self.primary_options()?.options(POINT_PLANS))
    }
}

/// Planner settings of the connections that run the task path's statements (insert,
/// claim, complete, event numbering). PostgreSQL keeps the generic plan of a prepared
/// statement for the life of the connection, and these are prepared while `tasks` is nearly
/// empty (every fresh installation, every benchmark), where a sequential scan looks
/// cheapest and is then kept as the table grows. A bitmap scan of the running-task index is
/// the other trap: it never marks the entries of finished tasks dead, so the index it reads
/// keeps growing until vacuum (14,000 entries for 20 running tasks, 30,000 tasks into a run),
/// where a plain index scan clears them as it goes. With both off, completions find their
/// rows through the running-task index or by key, claims through the ready index; a
/// `disable` only makes a path look expensive, so a statement with no other way still
/// runs. `tests/postgres.rs` checks the plans.
pub const POINT_PLANS: [(&str, &str); 2] =
    [("enable_seqscan", "off"), ("enable_bitmapscan", "off")];

/// Most connections of the task-path pool: the submitter, the completion loop (results
/// and live events) and the dispatchers' claims each hold at most one at a time.
const TASK_PATH_CONNECTIONS: u32 = 8;

/// `claim_tasks.sql` with its parameters: every key's quota in one statement.
fn claim_keys_query<'q>(
    req: &'q ClaimRequest,
    agent: &'q str,
    keys: &[KeyQuota],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let quotas: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k.fair_key, "priority": k.priority, "quota": k.max}))
        .collect();
    sqlx::query(sql!("postgres", "claim_tasks"))
        .bind(req.worker_id.0)
        .bind(req.worker_name.as_str())
        .bind(req.now.plus_ms(req.lease_ms).millis())
        .bind(req.now.millis())
        .bind(agent)
        .bind(Value::Array(quotas))
}

/// The production store: [`SqlStore`] on PostgreSQL.
pub type PgStore = SqlStore<PgDialect>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL's pools and hooks (see [`Dialect`]).
pub struct PgDialect {
    writer: PgPool,
    /// Connections with [`POINT_PLANS`], for the task path's statements.
    task_path: PgPool,
    /// The submit loop's and the completion loop's connections (see [`kept`]).
    kept_insert: kept::KeptConnection,
    kept_complete: kept::KeptConnection,
    reader: PgPool,
    settings: PgSettings,
    calls: Calls,
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        // A restarted server leaves dead connections in the pool: check a connection that
        // sat idle before use. One in steady use is not pinged (that would be a round trip
        // per statement); if the server went away meanwhile, the statement fails as
        // unavailable and the connection is dropped.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .idle_timeout(Duration::from_secs(300))
}

impl PgStore {
    /// Connects to the primary (and lazily to the replica, if any).
    pub async fn connect(settings: PgSettings) -> Result<Self> {
        let writer = pool_options(settings.max_connections)
            .connect_with(settings.primary_options()?)
            .await
            .map_err(db_err("connect to PostgreSQL"))?;
        let reader = match &settings.replica_url {
            Some(url) => {
                pool_options(settings.max_connections).connect_lazy_with(settings.options(url)?)
            }
            None => writer.clone(),
        };
        let task_path = pool_options(TASK_PATH_CONNECTIONS.min(settings.max_connections))
            .connect_lazy_with(settings.task_path_options()?);
        Ok(SqlStore::new(PgDialect {
            writer,
            task_path,
            kept_insert: Default::default(),
            kept_complete: Default::default(),
            reader,
            settings,
            calls: Default::default(),
        }))
    }

    /// The settings this store connected with (for the bus and leader election).
    pub fn settings(&self) -> &PgSettings {
        &self.dialect.settings
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.dialect.writer
    }

    /// Closes the pools.
    pub async fn close(&self) {
        let d = &self.dialect;
        d.writer.close().await;
        d.kept_insert.release().await;
        d.kept_complete.release().await;
        d.task_path.close().await;
        d.reader.close().await;
    }
}

impl PgDialect {
    /// The primary, through the connections with [`POINT_PLANS`].
    fn task_path(&self) -> &PgPool {
        self.calls.add(1);
        &self.task_path
    }
}

#[async_trait]
impl Dialect for PgDialect {
    type Db = sqlx::Postgres;
    type Row = PgRow;

    const BACKEND: &'static str = "postgres";
    const BACKUP_ROWS: (&'static str, &'static str) = ("json_array_elements(", "::json) AS r");
    const DERIVED_TABLES: &'static [&'static str] = &["task_search", "workers", "uploads"];
    const SQL: Statements = Statements {
        extend_leases: sql!("postgres", "extend_leases"),
        lock_session: sql!("postgres", "lock_session"),
        clear_stale_idempotency: sql!("postgres", "clear_stale_idempotency"),
        find_by_idempotency: sql!("postgres", "find_by_idempotency"),
        lock_task: sql!("postgres", "lock_task"),
        lock_blob: sql!("postgres", "lock_blob"),
        due_waits: sql!("postgres", "due_waits"),
        add_metric_points: sql!("postgres", "add_metric_points"),
        set_metric_gauges: sql!("postgres", "set_metric_gauges"),
        downsample_metrics: sql!("postgres", "downsample_metrics"),
        search_logs: sql!("postgres", "search_logs"),
        search_finished: sql!("postgres", "search_finished"),
        timed_out_attempts: sql!("postgres", "timed_out_attempts"),
        report_usage: sql!("postgres", "report_usage"),
    };

    fn calls(&self) -> &Calls {
        &self.calls
    }

    fn writer(&self) -> &PgPool {
        self.calls.add(1);
        &self.writer
    }

    fn reader(&self) -> &PgPool {
        self.calls.add(1);
        &self.reader
    }

    /// A replica may lag: reads that must see the latest commit go to the primary.
    fn fresh_reader(&self) -> &PgPool {
        self.calls.add(1);
        &self.writer
    }

    fn pools(&self) -> Vec<PoolStats> {
        let mut pools = vec![
            pool_stats("primary", &self.writer),
            pool_stats("task_path", &self.task_path),
        ];
        if self.settings.replica_url.is_some() {
            pools.push(pool_stats("replica", &self.reader));
        }
        pools
    }

    /// On the primary. Every commit is durable (`synchronous_commit` stays on), so
    /// `durable` makes no difference here.
    async fn begin_write(
        &self,
        _durable: bool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.calls.add(2);
        self.writer.begin().await.map_err(db_err("begin"))
    }

    /// PostgreSQL flushes on commit (and groups concurrent commits' flushes itself).
    async fn begin_flushed(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin_write(true).await
    }

    fn flushed(&self) -> Synced {
        already_synced()
    }

    /// On the connections with [`POINT_PLANS`].
    async fn begin_task_path(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.calls.add(2);
        self.task_path.begin().await.map_err(db_err("begin"))
    }

    /// `REPEATABLE READ, READ ONLY`: one snapshot for the whole transaction, on the
    /// replica when there is one. A snapshot open on the primary keeps every row version
    /// written after it from being pruned, which slows the busy `tasks` table by about a
    /// third for as long as it lasts (docs/performance.md); on a streaming replica it
    /// costs the primary nothing. A replica's snapshot is as consistent as the primary's,
    /// as of the last change it replayed.
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.calls.add(1);
        self.reader
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(db_err("begin snapshot"))
    }

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn backup_value(kind: crate::sql_store::backup::Kind, index: usize) -> String {
        use crate::sql_store::backup::Kind;
        let cast = match kind {
            Kind::Uuid => "::uuid",
            Kind::Text => "",
            Kind::Int => "::bigint",
            Kind::Real => "::double precision",
            Kind::Bool => "::boolean",
            Kind::Json => "::jsonb",
        };
        format!("(r ->> {index}){cast}")
    }

    async fn fetch_all(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Vec<PgRow>> {
        let query = query.into_sqlx::<sqlx::Postgres>();
        match on {
            On::Pool(pool) => query.fetch_all(pool).await,
            On::Conn(conn) => query.fetch_all(conn).await,
        }
    }

    async fn fetch_optional(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<Option<PgRow>> {
        let query = query.into_sqlx::<sqlx::Postgres>();
        match on {
            On::Pool(pool) => query.fetch_optional(pool).await,
            On::Conn(conn) => query.fetch_optional(conn).await,
        }
    }

    async fn fetch_one(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<PgRow> {
        let query = query.into_sqlx::<sqlx::Postgres>();
        match on {
            On::Pool(pool) => query.fetch_one(pool).await,
            On::Conn(conn) => query.fetch_one(conn).await,
        }
    }

    async fn execute(on: On<'_, Self>, query: Query<'_>) -> sqlx::Result<u64> {
        let query = query.into_sqlx::<sqlx::Postgres>();
        let done = match on {
            On::Pool(pool) => query.execute(pool).await?,
            On::Conn(conn) => query.execute(conn).await?,
        };
        Ok(done.rows_affected())
    }

    /// One statement is its own transaction: a batch costs one round trip, and its commit
    /// is durable (`synchronous_commit` stays on).
    async fn insert_batch_atomic(&self, batch: &[NewTask]) -> Result<Synced> {
        let json = crate::batch::new_tasks_json(batch);
        self.kept_insert
            .run(self.task_path(), async |conn| {
                sqlx::query(sql!("postgres", "insert_tasks"))
                    .bind(json)
                    .execute(conn)
                    .await
            })
            .await
            .map_err(db_err("insert tasks"))?;
        Ok(already_synced())
    }

    async fn insert_batch(
        &self,
        tx: &mut PgConnection,
        batch: &[NewTask],
    ) -> Result<HashSet<Uuid>> {
        self.calls.add(1);
        let json = crate::batch::new_tasks_json(batch);
        let ids: Vec<Uuid> = sqlx::query_scalar(insert_or_skip!("postgres"))
            .bind(json)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("insert tasks"))?;
        Ok(ids.into_iter().collect())
    }

    async fn claim_keys_atomic(
        &self,
        req: &ClaimRequest,
        agent: &str,
        keys: &[KeyQuota],
    ) -> Result<Vec<ClaimedTask>> {
        let rows = claim_keys_query(req, agent, keys)
            .fetch_all(self.task_path())
            .await
            .map_err(db_err("claim tasks"))?;
        rows.iter().map(crate::rows::claimed).collect()
    }

    async fn claim_keys(
        &self,
        tx: &mut PgConnection,
        req: &ClaimRequest,
        agent: &str,
        keys: &[KeyQuota],
    ) -> Result<Vec<ClaimedTask>> {
        self.calls.add(1);
        let rows = claim_keys_query(req, agent, keys)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("claim tasks"))?;
        rows.iter().map(crate::rows::claimed).collect()
    }

    async fn lock_agent(&self, tx: &mut PgConnection, agent: &str) -> Result<()> {
        self.calls.add(1);
        sqlx::query(sql!("postgres", "lock_agent"))
            .bind(agent)
            .execute(&mut *tx)
            .await
            .map_err(db_err("lock agent"))?;
        Ok(())
    }

    async fn complete_batch_atomic(&self, batch: &[&Completion]) -> Result<Vec<Transition>> {
        let json = crate::batch::completions_json(batch);
        let rows = self
            .kept_complete
            .run(self.task_path(), async |conn| {
                sqlx::query(sql!("postgres", "complete_tasks"))
                    .bind(json)
                    .fetch_all(conn)
                    .await
            })
            .await
            .map_err(db_err("complete tasks"))?;
        rows.iter().map(crate::rows::transition).collect()
    }

    async fn complete_batch(
        &self,
        tx: &mut PgConnection,
        batch: &[&Completion],
    ) -> Result<Vec<Transition>> {
        self.calls.add(1);
        let json = crate::batch::completions_json(batch);
        let rows = sqlx::query(sql!("postgres", "complete_tasks"))
            .bind(&json)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("complete tasks"))?;
        rows.iter().map(crate::rows::transition).collect()
    }

    async fn reserve_numbers(
        &self,
        tx: &mut PgConnection,
        json: String,
    ) -> Result<Vec<crate::rows::ReservedNumbers>> {
        self.calls.add(1);
        let rows = sqlx::query(sql!("postgres", "reserve_numbers"))
            .bind(json)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("reserve event numbers"))?;
        rows.iter().map(crate::rows::reserved_numbers).collect()
    }

    async fn count_events(
        &self,
        tx: &mut PgConnection,
        json: String,
    ) -> Result<Vec<(TaskId, u64)>> {
        self.calls.add(1);
        let rows = sqlx::query(sql!("postgres", "count_events"))
            .bind(json)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("count stored events"))?;
        rows.iter().map(crate::rows::stream_count).collect()
    }

    async fn insert_logs(&self, tx: &mut PgConnection, json: String) -> Result<()> {
        self.calls.add(1);
        sqlx::query(sql!("postgres", "insert_logs"))
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(db_err("insert task logs"))?;
        Ok(())
    }

    async fn insert_stream(
        &self,
        tx: &mut PgConnection,
        rows: &[crate::batch::StreamRow],
    ) -> Result<()> {
        self.calls.add(1);
        sqlx::query(sql!("postgres", "insert_stream"))
            .bind(crate::batch::stream_json(rows))
            .execute(&mut *tx)
            .await
            .map_err(db_err("insert task stream events"))?;
        Ok(())
    }

    async fn attempts_for(&self, ids: &[TaskId]) -> Result<Vec<(TaskId, Attempt)>> {
        let json = Value::Array(ids.iter().map(|id| hex_id(&id.0).into()).collect());
        let rows = sqlx::query(sql!("postgres", "attempts_for_tasks"))
            .bind(json.to_string())
            .fetch_all(self.reader())
            .await
            .map_err(db_err("attempts for tasks"))?;
        rows.iter().map(crate::rows::attempt).collect()
    }

    fn search_filter() -> (&'static str, &'static str) {
        (
            "SELECT task_id FROM task_search WHERE doc @@ to_tsquery('simple', ",
            ")",
        )
    }

    /// A `tsquery` of every term.
    fn search_query(terms: &[String]) -> String {
        terms.join(" & ")
    }

    async fn write_search_documents(
        conn: &mut PgConnection,
        documents: &[(TaskId, bool, String)],
    ) -> Result<()> {
        let docs = Value::Array(
            documents
                .iter()
                .map(|(id, complete, body)| {
                    json!({"id": hex_id(&id.0), "complete": complete, "body": body})
                })
                .collect(),
        )
        .to_string();
        sqlx::query(sql!("postgres", "search_write"))
            .bind(docs)
            .execute(&mut *conn)
            .await
            .map_err(db_err("search write"))?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        PgDialect::BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.dialect.writer)
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        // The migrator holds an advisory lock, so processes starting together take turns.
        MIGRATOR
            .run(&self.dialect.writer)
            .await
            .map_err(|e| Error::internal("PostgreSQL migration failed", e))
    }
}
