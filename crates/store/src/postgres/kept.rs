//! A connection that one loop keeps between its statements.
//!
//! sqlx pings every connection it takes back into a pool (a round trip, and a task spawned
//! to make it), so a statement run on a pool costs two round trips. The submit loop and
//! the completion loop each run one statement after another, all day: each keeps a
//! connection of the task-path pool instead, and a statement costs one round trip.
//!
//! A kept connection that sat idle is pinged before use, as the pool does with its own
//! ([`PING_IF_IDLE_FOR`]), so a server restart costs no failed statement. One that failed
//! other than with an SQL error (the connection broke, or the statement was interrupted
//! and left it mid-exchange) goes back to the pool to be closed, and the next statement
//! takes a fresh one.

use std::time::Instant;

use sqlx::Connection;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Error, Postgres};
use tokio::sync::Mutex;

use super::PING_IF_IDLE_FOR;

#[derive(Default)]
pub(super) struct KeptConnection(Mutex<Option<(PoolConnection<Postgres>, Instant)>>);

impl KeptConnection {
    /// Runs `statement` on the kept connection (from `pool` if there is none yet), or on
    /// a connection of `pool` while another caller has the kept one.
    pub(super) async fn run<T>(
        &self,
        pool: &PgPool,
        statement: impl AsyncFnOnce(&mut PgConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let Ok(mut slot) = self.0.try_lock() else {
            let mut conn = pool.acquire().await?;
            return statement(&mut conn).await;
        };
        let mut conn = match slot.take() {
            Some((mut conn, used)) if used.elapsed() >= PING_IF_IDLE_FOR => {
                match conn.ping().await {
                    Ok(()) => conn,
                    Err(_) => {
                        conn.close_on_drop();
                        pool.acquire().await?
                    }
                }
            }
            Some((conn, _)) => conn,
            None => pool.acquire().await?,
        };
        // Taken out of the slot while the statement runs: if this future is dropped
        // half-way, so is the connection, and the slot stays empty.
        let result = statement(&mut conn).await;
        match &result {
            Ok(_) | Err(Error::Database(_)) => *slot = Some((conn, Instant::now())),
            Err(_) => conn.close_on_drop(),
        }
        result
    }

    /// Gives the connection back to its pool (which waits for it when closing).
    pub(super) async fn release(&self) {
        self.0.lock().await.take();
    }
}
