//! Leader election for cluster duties over a PostgreSQL session advisory lock.
//!
//! The holder keeps one dedicated connection with `pg_try_advisory_lock`; the lock lives
//! as long as that session. If the holder dies (or loses its connection), PostgreSQL
//! ends the session and frees the lock, and the next process that checks takes it. The
//! holder verifies its connection on every check, so it learns of a loss within one
//! check interval; until then two processes may briefly both reap, which is safe
//! because every completion is conditional on the attempt's lease.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use switchyard_core::Result;
use switchyard_core::store::Leadership;
use tokio::sync::Mutex;

use super::PgStore;

/// The advisory-lock key of Switchyard's cluster duties ("SWYD" + 1).
const DUTIES_LOCK: i64 = 0x5357_5944_0001;
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgLeadership {
    options: PgConnectOptions,
    key: i64,
    /// The session holding the lock, if this process is the leader.
    held: Mutex<Option<PgConnection>>,
}

impl PgLeadership {
    pub fn new(store: &PgStore) -> Result<Self> {
        Self::with_key(store, DUTIES_LOCK)
    }

    /// Another lock key: independent elections in one database (tests).
    pub fn with_key(store: &PgStore, key: i64) -> Result<Self> {
        Ok(PgLeadership {
            options: store.settings().primary_options()?,
            key,
            held: Mutex::new(None),
        })
    }

    async fn try_acquire(&self) -> std::result::Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(conn))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

#[async_trait]
impl Leadership for PgLeadership {
    async fn check(&self) -> bool {
        let mut held = self.held.lock().await;
        if let Some(conn) = held.as_mut() {
            let alive = tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(conn))
                .await
                .is_ok_and(|r| r.is_ok());
            if alive {
                return true;
            }
            tracing::warn!("lost the connection holding the cluster duties; stepping down");
            *held = None;
        }
        match tokio::time::timeout(CHECK_TIMEOUT, self.try_acquire()).await {
            Ok(Ok(Some(conn))) => {
                tracing::info!("this process now runs the cluster duties (reaper, housekeeping)");
                *held = Some(conn);
                true
            }
            Ok(Ok(None)) => false,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot contend for the cluster duties");
                false
            }
            Err(_) => false,
        }
    }

    async fn release(&self) {
        if let Some(mut conn) = self.held.lock().await.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}
