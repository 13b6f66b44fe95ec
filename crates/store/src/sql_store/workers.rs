//! `WorkerStore`: the registry of connected workers.

use async_trait::async_trait;
use switchyard_core::store::{WorkerInfo, WorkerStore};
use switchyard_core::{Error, Result, Timestamp, WorkerId};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, db_err};
use crate::sql::sql;

#[async_trait]
impl<D: Dialect> WorkerStore for SqlStore<D> {
    async fn upsert_worker(&self, w: &WorkerInfo) -> Result<()> {
        let agents =
            serde_json::to_string(&w.agents).map_err(|e| Error::internal("encode agents", e))?;
        Query::new(sql!("common", "upsert_worker"))
            .bind(w.id.0)
            .bind(&w.name)
            .bind(&w.kind)
            .bind(agents)
            .bind(i64::from(w.slots))
            .bind(i64::from(w.slots_in_use))
            .bind(&w.version)
            .bind(w.host.as_deref())
            .bind(w.started_at.millis())
            .bind(w.heartbeat_at.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("upsert worker"))?;
        Ok(())
    }

    async fn remove_worker(&self, id: WorkerId) -> Result<()> {
        Query::new(sql!("common", "remove_worker"))
            .bind(id.0)
            .execute(self.writer())
            .await
            .map_err(db_err("remove worker"))?;
        Ok(())
    }

    async fn list_workers(&self, alive_since: Timestamp) -> Result<Vec<WorkerInfo>> {
        let rows = Query::new(sql!("common", "list_workers"))
            .bind(alive_since.millis())
            .fetch_all(self.reader())
            .await
            .map_err(db_err("list workers"))?;
        rows.iter().map(rows::worker).collect()
    }

    async fn prune_workers(&self, before: Timestamp) -> Result<u64> {
        Query::new(sql!("common", "prune_workers"))
            .bind(before.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("prune workers"))
    }
}
