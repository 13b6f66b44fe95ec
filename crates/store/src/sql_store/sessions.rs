//! `SessionStore`: sign-in sessions and their refresh-token rotation.

use async_trait::async_trait;
use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
use switchyard_core::store::{SessionStore, rotate_session};
use switchyard_core::{Error, Result, SessionId, Timestamp, UserId};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{self, db_err};
use crate::sql::sql;

#[async_trait]
impl<D: Dialect> SessionStore for SqlStore<D> {
    async fn put_session(&self, s: &Session) -> Result<()> {
        let used = serde_json::to_string(&s.used_hashes)
            .map_err(|e| Error::internal("encode session", e))?;
        Query::new(sql!("common", "put_session"))
            .bind(s.id.0)
            .bind(s.user_id.0)
            .bind(s.created_at.millis())
            .bind(s.expires_at.millis())
            .bind(s.last_refreshed_at.millis())
            .bind(s.user_agent.as_deref())
            .bind(s.ip.as_deref())
            .bind(&s.refresh_hash)
            .bind(used)
            .bind(&s.sealed_next)
            .execute(self.writer())
            .await
            .map_err(db_err("put session"))?;
        Ok(())
    }

    async fn get_session(&self, id: SessionId, now: Timestamp) -> Result<Option<Session>> {
        let row = Query::new(sql!("common", "get_session"))
            .bind(id.0)
            .bind(now.millis())
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("get session"))?;
        row.as_ref().map(rows::session).transpose()
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let deleted = Query::new(sql!("common", "delete_session"))
            .bind(id.0)
            .execute(self.writer())
            .await
            .map_err(db_err("delete session"))?;
        Ok(deleted > 0)
    }

    async fn list_sessions(&self, user: UserId, now: Timestamp) -> Result<Vec<Session>> {
        let rows = Query::new(sql!("common", "list_sessions"))
            .bind(user.0)
            .bind(now.millis())
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list sessions"))?;
        rows.iter().map(rows::session).collect()
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome> {
        let mut tx = self.begin_write(true).await?;
        let row = Query::new(D::SQL.lock_session)
            .bind(id.0)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("lock session"))?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let mut session = rows::session(&row)?;
        let outcome = rotate_session(&mut session, rotation);
        match &outcome {
            RefreshOutcome::Rotated(s) => {
                let used = serde_json::to_string(&s.used_hashes)
                    .map_err(|e| Error::internal("encode session", e))?;
                Query::new(sql!("common", "update_session_refresh"))
                    .bind(id.0)
                    .bind(&s.refresh_hash)
                    .bind(used)
                    .bind(s.expires_at.millis())
                    .bind(s.last_refreshed_at.millis())
                    .bind(&s.sealed_next)
                    .execute(tx.on())
                    .await
                    .map_err(db_err("rotate refresh token"))?;
            }
            RefreshOutcome::Reused => {
                Query::new(sql!("common", "delete_session"))
                    .bind(id.0)
                    .execute(tx.on())
                    .await
                    .map_err(db_err("revoke session"))?;
            }
            RefreshOutcome::Repeated(_) | RefreshOutcome::Invalid => {}
        }
        tx.commit().await.map_err(db_err("commit refresh"))?;
        Ok(outcome)
    }

    async fn prune_sessions(&self, before: Timestamp) -> Result<u64> {
        Query::new(sql!("common", "prune_sessions"))
            .bind(before.millis())
            .execute(self.writer())
            .await
            .map_err(db_err("prune sessions"))
    }
}
