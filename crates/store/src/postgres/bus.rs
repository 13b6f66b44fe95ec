//! An event bus over PostgreSQL LISTEN/NOTIFY.
//!
//! It lets a cluster run without Redis (dispatchers on every process wake the moment a
//! task is queued) and is what the Redis bus falls back to while Redis is unreachable.
//! NOTIFY payloads are limited to 8000 bytes: larger messages are split per task event
//! and, if one event alone is too large, stored in `bus_messages` with only its row id
//! in the notification. A process receives its own messages too, like every bus.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use switchyard_core::cache::EventBus;
use switchyard_core::event::{BusMessage, SharedBusMessage};
use switchyard_core::{Error, Result, Timestamp};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::PgStore;
use crate::rows::db_err;

/// Payloads up to this size travel inside the notification.
const MAX_INLINE: usize = 7_900;
/// Spilled messages older than this are deleted (listeners read them within moments).
const SPILL_RETENTION_MS: u64 = 10 * 60_000;
/// Marks a notification that carries a `bus_messages` row id instead of the message.
const SPILL_PREFIX: char = '#';

pub struct PgBus {
    pool: PgPool,
    channel: String,
    tx: broadcast::Sender<SharedBusMessage>,
    listener: JoinHandle<()>,
}

impl PgBus {
    /// Starts listening on `channel` (a plain identifier; processes that should hear each
    /// other use the same one).
    pub fn start(store: &PgStore, channel: &str) -> Result<Arc<PgBus>> {
        if channel.is_empty()
            || !channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::internal_msg(format!(
                "invalid NOTIFY channel name {channel:?}"
            )));
        }
        let pool = store.pool().clone();
        let (tx, _) = broadcast::channel(65_536);
        let listener = tokio::spawn(listen(pool.clone(), channel.to_owned(), tx.clone()));
        Ok(Arc::new(PgBus {
            pool,
            channel: channel.to_owned(),
            tx,
            listener,
        }))
    }

    async fn notify(&self, payload: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(db_err("notify"))?;
        Ok(())
    }

    async fn spill(&self, payload: &str) -> Result<()> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bus_messages (payload, created_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(payload)
        .bind(Timestamp::now().millis())
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("store large bus message"))?;
        self.notify(&format!("{SPILL_PREFIX}{id}")).await
    }
}

impl Drop for PgBus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Splits a message into payloads that fit a notification where possible, keeping the
/// order of events.
fn payloads(message: &BusMessage) -> Result<Vec<String>> {
    let encode = |m: &BusMessage| {
        serde_json::to_string(m).map_err(|e| Error::internal("encode bus message", e))
    };
    let whole = encode(message)?;
    if whole.len() <= MAX_INLINE {
        return Ok(vec![whole]);
    }
    match message {
        BusMessage::Tasks { events } if events.len() > 1 => {
            let (a, b) = events.split_at(events.len() / 2);
            let mut out = payloads(&BusMessage::Tasks { events: a.to_vec() })?;
            out.extend(payloads(&BusMessage::Tasks { events: b.to_vec() })?);
            Ok(out)
        }
        _ => Ok(vec![whole]),
    }
}

#[async_trait]
impl EventBus for PgBus {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn publish(&self, message: SharedBusMessage) -> Result<()> {
        for payload in payloads(&message)? {
            if payload.len() <= MAX_INLINE {
                self.notify(&payload).await?;
            } else {
                self.spill(&payload).await?;
            }
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<SharedBusMessage> {
        self.tx.subscribe()
    }
}

/// Receives notifications until the bus is dropped, reconnecting with backoff.
async fn listen(pool: PgPool, channel: String, tx: broadcast::Sender<SharedBusMessage>) {
    let mut backoff = Duration::from_millis(100);
    let mut last_prune = tokio::time::Instant::now();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot connect the PostgreSQL event listener"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // Reconnecting ourselves (below) is explicit; never block on a dead server.
        listener.ignore_pool_close_event(true);
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "cannot LISTEN for events");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(100);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(message) = decode(&pool, n.payload()).await {
                        let _ = tx.send(Arc::new(message));
                    }
                }
                Ok(None) => {
                    // The connection dropped; notifications sent meanwhile are lost, which
                    // the consumers tolerate (dispatchers poll, followers resume by seq).
                    tracing::warn!(
                        "the PostgreSQL event listener lost its connection; reconnecting"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "the PostgreSQL event listener failed; reconnecting"
                    );
                    break;
                }
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                let before = Timestamp::now().minus_ms(SPILL_RETENTION_MS).millis();
                if let Err(e) = sqlx::query("DELETE FROM bus_messages WHERE created_at < $1")
                    .bind(before)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "pruning spilled bus messages failed");
                }
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

async fn decode(pool: &PgPool, payload: &str) -> Option<BusMessage> {
    let text = if let Some(id) = payload.strip_prefix(SPILL_PREFIX) {
        let id: i64 = id.parse().ok()?;
        match sqlx::query_scalar::<_, String>("SELECT payload FROM bus_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
        {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a large bus message");
                return None;
            }
        }
    } else {
        payload.to_owned()
    };
    match serde_json::from_str(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable bus message");
            None
        }
    }
}
