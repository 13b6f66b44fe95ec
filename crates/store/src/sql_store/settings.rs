//! `SettingsStore`: the key-value settings of the installation.

use async_trait::async_trait;
use switchyard_core::store::SettingsStore;
use switchyard_core::{Error, Result};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

#[async_trait]
impl<D: Dialect> SettingsStore for SqlStore<D> {
    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Query::new(sql!("common", "get_setting"))
            .bind(key)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("get setting"))?
            .map(|r| r.string_at(0))
            .transpose()
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin_write(true).await?;
        Query::new(sql!("common", "init_setting"))
            .bind(key)
            .bind(value)
            .execute(tx.on())
            .await
            .map_err(db_err("init setting"))?;
        tx.commit().await.map_err(db_err("commit"))?;
        self.get_setting(key)
            .await?
            .ok_or_else(|| Error::internal_msg(format!("setting {key} vanished")))
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut tx = self.begin_write(true).await?;
        Query::new(sql!("common", "put_setting"))
            .bind(key)
            .bind(value)
            .execute(tx.on())
            .await
            .map_err(db_err("put setting"))?;
        tx.commit().await.map_err(db_err("commit"))?;
        Ok(())
    }
}
