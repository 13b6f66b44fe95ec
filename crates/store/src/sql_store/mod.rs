//! The `Store` implementation, written once for every backend over a [`Dialect`]: what
//! differs per database is the dialect's (`sqlite/`, `postgres/`), everything else is
//! here, one file per store trait.

mod agents;
mod audit;
pub(crate) mod backup;
mod files;
mod identity;
mod monitoring;
mod rate_limits;
mod schedules;
pub(crate) mod search;
mod sessions;
mod settings;
mod steps;
mod tasks;
mod waits;
mod workers;

use switchyard_core::store::TaskQuery;
use switchyard_core::task::Task;
use switchyard_core::{Result, TaskId};

use crate::dialect::{Conn, Dialect, On, Transaction};
use crate::query::Query;
use crate::rows::{self, db_err};
use crate::sql::{sql, task_columns};

/// A store on the database of dialect `D`. The backends are [`SqliteStore`] and
/// [`PgStore`].
///
/// [`SqliteStore`]: crate::SqliteStore
/// [`PgStore`]: crate::PgStore
pub struct SqlStore<D> {
    pub(crate) dialect: D,
}

/// A transaction of the shared code: its queries run [`on`](Tx::on) it, the dialect's
/// hooks on its [`conn`](Tx::conn).
pub(crate) struct Tx<D: Dialect>(Transaction<D>);

impl<D: Dialect> Tx<D> {
    pub(crate) fn on(&mut self) -> On<'_, D> {
        On::Conn(&mut *self.0)
    }

    pub(crate) fn conn(&mut self) -> &mut Conn<D> {
        &mut self.0
    }

    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        self.0.commit().await
    }

    /// Ends the transaction now (a dropped one is rolled back only when its connection
    /// is next used, and holds its locks until then).
    pub(crate) async fn rollback(self) -> sqlx::Result<()> {
        self.0.rollback().await
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) fn new(dialect: D) -> Self {
        SqlStore { dialect }
    }

    /// Counts `n` database calls about to be made (see `calls.rs`).
    fn count(&self, n: u64) {
        self.dialect.calls().add(n);
    }

    fn writer(&self) -> On<'_, D> {
        On::Pool(self.dialect.writer())
    }

    fn reader(&self) -> On<'_, D> {
        On::Pool(self.dialect.reader())
    }

    fn fresh_reader(&self) -> On<'_, D> {
        On::Pool(self.dialect.fresh_reader())
    }

    async fn begin_write(&self, durable: bool) -> Result<Tx<D>> {
        self.dialect.begin_write(durable).await.map(Tx)
    }

    /// A durable write that shares its flush with others ([`Dialect::begin_flushed`]);
    /// finish it with [`SqlStore::commit_flushed`].
    async fn begin_flushed(&self) -> Result<Tx<D>> {
        self.dialect.begin_flushed().await.map(Tx)
    }

    /// Commits `tx` and returns once it is on disk.
    async fn commit_flushed(&self, tx: Tx<D>, what: &'static str) -> Result<()> {
        tx.commit().await.map_err(db_err(what))?;
        self.dialect.flushed().await
    }

    async fn begin_task_path(&self) -> Result<Tx<D>> {
        self.dialect.begin_task_path().await.map(Tx)
    }

    /// A plain transaction on the writer pool (one counted call, as a statement).
    async fn begin_writer(&self, context: &'static str) -> Result<Tx<D>> {
        self.dialect
            .writer()
            .begin()
            .await
            .map(Tx)
            .map_err(db_err(context))
    }

    /// The rows of a task list, newest first.
    async fn list_rows(&self, q: &TaskQuery) -> Result<Vec<D::Row>> {
        let mut query = Query::new(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE true"
        ));
        if let Some(owner) = q.owner_id {
            query.push(" AND owner_id = ").push_bind(owner.0);
        }
        if let Some(agent) = &q.agent {
            query.push(" AND agent = ").push_bind(agent);
        }
        if !q.statuses.is_empty() {
            query.push(" AND status IN ");
            query.push_list(q.statuses.iter().map(|s| s.as_str()));
        }
        if let Some(after) = q.created_after {
            query.push(" AND created_at >= ").push_bind(after.millis());
        }
        if let Some(before) = q.created_before {
            query.push(" AND created_at < ").push_bind(before.millis());
        }
        if let Some(parent) = q.parent_id {
            query.push(" AND parent_id = ").push_bind(parent.0);
        }
        if let Some(cursor) = q.before_id {
            query.push(" AND id < ").push_bind(cursor.0);
        }
        if let Some(text) = &q.text {
            let Some(terms) = search::search_query::<D>(text) else {
                return Ok(Vec::new());
            };
            let (open, close) = D::search_filter();
            query.push(" AND id IN (").push(open).push_bind(terms);
            query.push(close).push(")");
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(q.limit.max(1)));
        query
            .fetch_all(self.reader())
            .await
            .map_err(db_err("list tasks"))
    }

    /// Reads one task with its attempts on the given connection (so a transaction sees
    /// its own writes).
    async fn read_task(conn: &mut Conn<D>, id: TaskId) -> Result<Option<Task>> {
        let Some(row) = Query::new(sql!("common", "get_task"))
            .bind(id.0)
            .fetch_optional(On::<D>::Conn(&mut *conn))
            .await
            .map_err(db_err("get task"))?
        else {
            return Ok(None);
        };
        let attempts = Query::new(sql!("common", "task_attempts"))
            .bind(id.0)
            .fetch_all(On::<D>::Conn(conn))
            .await
            .map_err(db_err("task attempts"))?
            .iter()
            .map(|r| rows::attempt(r).map(|(_, a)| a))
            .collect::<Result<Vec<_>>>()?;
        rows::task(&row, attempts).map(Some)
    }
}
