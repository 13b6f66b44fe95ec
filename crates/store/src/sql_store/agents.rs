//! `AgentStore`: agent definitions.

use async_trait::async_trait;
use switchyard_core::agent::Agent;
use switchyard_core::store::AgentStore;
use switchyard_core::{Error, Result};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, db_err};
use crate::sql::sql;

#[async_trait]
impl<D: Dialect> AgentStore for SqlStore<D> {
    async fn put_agent(&self, agent: &Agent) -> Result<()> {
        let spec =
            serde_json::to_string(&agent.spec).map_err(|e| Error::internal("encode agent", e))?;
        let mut tx = self.begin_write(true).await?;
        Query::new(sql!("common", "put_agent"))
            .bind(&agent.spec.name)
            .bind(spec)
            .bind(agent.builtin)
            .bind(agent.created_at.millis())
            .bind(agent.updated_at.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("put agent"))?;
        tx.commit().await.map_err(db_err("commit agent"))?;
        Ok(())
    }

    async fn get_agent(&self, name: &str) -> Result<Option<Agent>> {
        let row = Query::new(sql!("common", "get_agent"))
            .bind(name)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("get agent"))?;
        row.as_ref().map(rows::agent).transpose()
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        let rows = Query::new(sql!("common", "list_agents"))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list agents"))?;
        rows.iter().map(rows::agent).collect()
    }

    async fn delete_agent(&self, name: &str) -> Result<bool> {
        let mut tx = self.begin_write(true).await?;
        let deleted = Query::new(sql!("common", "delete_agent"))
            .bind(name)
            .execute(tx.on())
            .await
            .map_err(db_err("delete agent"))?;
        tx.commit().await.map_err(db_err("commit agent"))?;
        Ok(deleted > 0)
    }
}
