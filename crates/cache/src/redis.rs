//! The Redis backends: a [`RedisCache`] shared by every process of a cluster (sessions,
//! rate-limit counters, result cache, key-value store) and a [`RedisBus`] over pub/sub
//! that delivers each message to every process, the publisher included.
//!
//! Every key starts with a prefix (`switchyard:` by default) so several installs, or
//! parallel tests, share one Redis. Read-modify-write operations (counters, refresh
//! rotation) are Lua scripts, atomic on the server.
//!
//! Connections are made lazily and re-made after failures: a process starts while Redis
//! is down and begins using it as soon as it answers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;

use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::{BusMessage, SharedBusMessage};
use switchyard_core::flow::{Cell, Grant, RateLimit, RateLimiter, micros};
use switchyard_core::store::MAX_USED_HASHES;
use switchyard_core::{Error, Result, SessionId, Timestamp, UserId};

/// A bounded wait for Redis: a dead server must make requests degrade, not hang.
const IO_TIMEOUT: Duration = Duration::from_millis(1_500);

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every key and channel.
    pub prefix: String,
}

impl RedisSettings {
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            url: url.into(),
            prefix: "switchyard:".into(),
        }
    }
}

fn unavailable(context: &'static str) -> impl Fn(redis::RedisError) -> Error {
    move |e| {
        let mut err = Error::unavailable(format!("cache unavailable ({context})"));
        err.source = Some(Box::new(e));
        err
    }
}

/// A lazily made, self-repairing connection.
struct Lazy {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
}

impl Lazy {
    fn new(url: &str) -> Result<Self> {
        // The parse error could echo the URL and its password: keep it out.
        let client = redis::Client::open(url)
            .map_err(|_| Error::internal_msg("redis.url is not a valid redis:// URL"))?;
        Ok(Lazy {
            client,
            conn: Mutex::new(None),
        })
    }

    async fn get(&self) -> Result<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable("connect"))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

const INCR_SCRIPT: &str = r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
";

/// KEYS: session hash, user's session set. ARGV: presented hash, new hash, new expiry
/// (ms), now (ms), most used hashes kept, new TTL (ms), session id, sealed new token,
/// grace window (ms). Returns `{verdict, a, b}`: `rotated` (a: the used hashes),
/// `repeated` (a: the current hash, b: its sealed token), `reused`, `invalid` or `missing`.
/// The rule is `switchyard_core::store::rotate_session`.
const ROTATE_SCRIPT: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'refresh_hash', 'used', 'expires_at',
                       'last_refreshed_at', 'sealed_next')
if not cur[1] then return {'missing', '', ''} end
if tonumber(cur[3]) <= tonumber(ARGV[4]) then return {'invalid', '', ''} end
local parts = {}
for h in string.gmatch(cur[2] or '', '[^\n]+') do table.insert(parts, h) end
if cur[1] == ARGV[1] then
  table.insert(parts, ARGV[1])
  while #parts > tonumber(ARGV[5]) do table.remove(parts, 1) end
  local used = table.concat(parts, '\n')
  redis.call('HSET', KEYS[1], 'refresh_hash', ARGV[2], 'used', used,
             'expires_at', ARGV[3], 'last_refreshed_at', ARGV[4], 'sealed_next', ARGV[8])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return {'rotated', used, ''}
end
if #parts > 0 and parts[#parts] == ARGV[1] and cur[5] and cur[5] ~= ''
   and math.max(0, tonumber(ARGV[4]) - tonumber(cur[4] or '0')) < tonumber(ARGV[9]) then
  return {'repeated', cur[1], cur[5]}
end
for _, h in ipairs(parts) do
  if h == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], ARGV[7])
    return {'reused', '', ''}
  end
end
return {'invalid', '', ''}
";

/// KEYS: the limiter. ARGV: operation (`acquire`, `refund`, `pause`), now (µs), then
/// for `acquire` wanted, interval (µs), burst (µs); for `refund` the µs to give back; for
/// `pause` the µs to wait until. The hash holds `switchyard_core::flow::Cell` (`tat`,
/// `paused`) and this is its rule. Returns `{granted, tat, paused}`.
const GCRA_SCRIPT: &str = r"
local cell = redis.call('HMGET', KEYS[1], 'tat', 'paused')
local tat, paused = tonumber(cell[1] or '0'), tonumber(cell[2] or '0')
local now = tonumber(ARGV[2])
local granted = 0
if ARGV[1] == 'acquire' then
  local want, interval, burst = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  if now >= paused then
    if tat < now then tat = now end
    if tat <= now + burst then
      granted = math.min(want, math.floor((now + burst - tat) / interval) + 1)
    end
    tat = tat + granted * interval
  end
elseif ARGV[1] == 'refund' then
  tat = math.max(0, tat - tonumber(ARGV[3]))
else
  paused = math.max(paused, tonumber(ARGV[3]))
end
local fmt = function(v) return string.format('%.0f', v) end
redis.call('HSET', KEYS[1], 'tat', fmt(tat), 'paused', fmt(paused))
redis.call('PEXPIRE', KEYS[1], math.max(1000, math.ceil((math.max(tat, paused) - now) / 1000) + 1000))
return {granted, fmt(tat), fmt(paused)}
";

pub struct RedisCache {
    conn: Lazy,
    prefix: String,
    incr: Script,
    rotate: Script,
    gcra: Script,
}

impl RedisCache {
    /// Prepares the cache; the connection is made on first use.
    pub fn new(settings: &RedisSettings) -> Result<Self> {
        Ok(RedisCache {
            conn: Lazy::new(&settings.url)?,
            prefix: settings.prefix.clone(),
            incr: Script::new(INCR_SCRIPT),
            rotate: Script::new(ROTATE_SCRIPT),
            gcra: Script::new(GCRA_SCRIPT),
        })
    }

    /// Runs the rate-limiter script: what it granted, and the key's state after.
    async fn gcra(&self, key: &str, args: &[u64], op: &str) -> Result<(u32, Cell)> {
        let mut conn = self.conn.get().await?;
        let mut invocation = self.gcra.key(format!("{}rate:{key}", self.prefix));
        invocation.arg(op);
        for a in args {
            invocation.arg(*a);
        }
        let (granted, tat, paused): (u32, String, String) =
            tokio::time::timeout(IO_TIMEOUT, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| Error::unavailable("cache unavailable (rate limit timed out)"))?
                .map_err(unavailable("rate limit"))?;
        let cell = Cell {
            tat_us: tat.parse().unwrap_or(0),
            paused_until_us: paused.parse().unwrap_or(0),
        };
        Ok((granted, cell))
    }

    fn kv_key(&self, key: &str) -> String {
        format!("{}kv:{key}", self.prefix)
    }

    fn counter_key(&self, key: &str) -> String {
        format!("{}ctr:{key}", self.prefix)
    }

    fn session_key(&self, id: SessionId) -> String {
        format!("{}session:{id}", self.prefix)
    }

    fn user_key(&self, user: UserId) -> String {
        format!("{}user-sessions:{user}", self.prefix)
    }

    async fn read_session(
        &self,
        conn: &mut ConnectionManager,
        id: SessionId,
    ) -> Result<Option<Session>> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.session_key(id))
            .arg(&[
                "meta",
                "refresh_hash",
                "used",
                "expires_at",
                "last_refreshed_at",
                "sealed_next",
            ])
            .query_async(conn)
            .await
            .map_err(unavailable("get session"))?;
        let [
            meta,
            refresh_hash,
            used,
            expires_at,
            last_refreshed_at,
            sealed_next,
        ] = <[Option<String>; 6]>::try_from(fields)
            .map_err(|_| Error::internal_msg("unexpected HMGET reply"))?;
        let (Some(meta), Some(refresh_hash)) = (meta, refresh_hash) else {
            return Ok(None);
        };
        let mut session: Session = serde_json::from_str(&meta)
            .map_err(|e| Error::internal("unreadable session in the cache", e))?;
        let millis = |v: Option<String>| -> Result<Timestamp> {
            v.and_then(|s| s.parse::<i64>().ok())
                .map(Timestamp::from_millis)
                .ok_or_else(|| Error::internal_msg("unreadable session time in the cache"))
        };
        session.refresh_hash = refresh_hash;
        session.used_hashes = used
            .unwrap_or_default()
            .split('\n')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        session.sealed_next = sealed_next.unwrap_or_default();
        session.expires_at = millis(expires_at)?;
        session.last_refreshed_at = millis(last_refreshed_at)?;
        if session.expires_at <= Timestamp::now() {
            return Ok(None);
        }
        Ok(Some(session))
    }
}

#[async_trait]
impl RateLimiter for RedisCache {
    async fn acquire(
        &self,
        key: &str,
        want: u32,
        limit: &RateLimit,
        now: Timestamp,
    ) -> Result<Grant> {
        let args = [
            micros(now),
            u64::from(want),
            limit.interval_us(),
            limit.burst_us(),
        ];
        let (granted, after) = self.gcra(key, &args, "acquire").await?;
        // Short of starts: when the next is allowed, by the same rule, from the state after.
        let retry_at = (granted < want)
            .then(|| after.acquire(micros(now), 1, limit).0.retry_at)
            .flatten();
        Ok(Grant { granted, retry_at })
    }

    async fn refund(&self, key: &str, n: u32, limit: &RateLimit) -> Result<()> {
        let back = u64::from(n) * limit.interval_us();
        self.gcra(key, &[micros(Timestamp::now()), back], "refund")
            .await
            .map(drop)
    }

    async fn pause(&self, key: &str, until: Timestamp) -> Result<()> {
        self.gcra(key, &[micros(Timestamp::now()), micros(until)], "pause")
            .await
            .map(drop)
    }
}

/// Refresh-token hashes are hex or base64: they never contain a newline, which
/// separates them in the hash field.
fn valid_hash(h: &str) -> bool {
    !h.is_empty() && !h.contains('\n')
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.get().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable("ping"))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut conn = self.conn.get().await?;
        conn.get(self.kv_key(key)).await.map_err(unavailable("get"))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let mut conn = self.conn.get().await?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        conn.pset_ex::<_, _, ()>(self.kv_key(key), value, ms)
            .await
            .map_err(unavailable("set"))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn.get().await?;
        let n: i64 = conn
            .del(self.kv_key(key))
            .await
            .map_err(unavailable("delete"))?;
        Ok(n > 0)
    }

    async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64> {
        let mut conn = self.conn.get().await?;
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        self.incr
            .key(self.counter_key(key))
            .arg(by)
            .arg(ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable("incr"))
    }

    async fn put_session(&self, session: &Session) -> Result<()> {
        if !valid_hash(&session.refresh_hash) || !session.used_hashes.iter().all(|h| valid_hash(h))
        {
            return Err(Error::internal_msg(
                "refresh-token hashes must not contain newlines",
            ));
        }
        let mut conn = self.conn.get().await?;
        let key = self.session_key(session.id);
        let ttl = session.expires_at.since(Timestamp::now());
        if ttl == 0 {
            // Already expired: make sure no older copy lingers.
            let _: () = redis::pipe()
                .atomic()
                .del(&key)
                .srem(self.user_key(session.user_id), session.id.to_string())
                .query_async(&mut conn)
                .await
                .map_err(unavailable("put session"))?;
            return Ok(());
        }
        let meta =
            serde_json::to_string(session).map_err(|e| Error::internal("encode session", e))?;
        let _: () = redis::pipe()
            .atomic()
            .del(&key)
            .hset_multiple(
                &key,
                &[
                    ("meta", meta),
                    ("refresh_hash", session.refresh_hash.clone()),
                    ("used", session.used_hashes.join("\n")),
                    ("expires_at", session.expires_at.millis().to_string()),
                    (
                        "last_refreshed_at",
                        session.last_refreshed_at.millis().to_string(),
                    ),
                    ("sealed_next", session.sealed_next.clone()),
                ],
            )
            .pexpire(&key, i64::try_from(ttl).unwrap_or(i64::MAX))
            .sadd(self.user_key(session.user_id), session.id.to_string())
            .query_async(&mut conn)
            .await
            .map_err(unavailable("put session"))?;
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>> {
        let mut conn = self.conn.get().await?;
        self.read_session(&mut conn, id).await
    }

    async fn delete_session(&self, id: SessionId) -> Result<bool> {
        let mut conn = self.conn.get().await?;
        let Some(session) = self.read_session(&mut conn, id).await? else {
            let n: i64 = conn
                .del(self.session_key(id))
                .await
                .map_err(unavailable("delete session"))?;
            return Ok(n > 0);
        };
        let (n,): (i64,) = redis::pipe()
            .atomic()
            .del(self.session_key(id))
            .srem(self.user_key(session.user_id), id.to_string())
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable("delete session"))?;
        Ok(n > 0)
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        let mut conn = self.conn.get().await?;
        let ids: Vec<String> = conn
            .smembers(self.user_key(user))
            .await
            .map_err(unavailable("list sessions"))?;
        let mut out = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for raw in ids {
            let Ok(id) = raw.parse::<SessionId>() else {
                gone.push(raw);
                continue;
            };
            match self.read_session(&mut conn, id).await? {
                Some(s) => out.push(s),
                None => gone.push(raw),
            }
        }
        if !gone.is_empty() {
            let _: () = conn
                .srem(self.user_key(user), gone)
                .await
                .map_err(unavailable("list sessions"))?;
        }
        out.sort_by_key(|s| (s.created_at, s.id));
        Ok(out)
    }

    async fn rotate_refresh(
        &self,
        id: SessionId,
        rotation: &Rotation<'_>,
    ) -> Result<RefreshOutcome> {
        if !valid_hash(rotation.presented_hash) || !valid_hash(rotation.new_hash) {
            return Ok(RefreshOutcome::Invalid);
        }
        let mut conn = self.conn.get().await?;
        let Some(session) = self.read_session(&mut conn, id).await? else {
            return Ok(RefreshOutcome::Invalid);
        };
        let ttl = rotation.new_expiry.since(rotation.now).max(1);
        let (verdict, a, b): (String, String, String) = self
            .rotate
            .key(self.session_key(id))
            .key(self.user_key(session.user_id))
            .arg(rotation.presented_hash)
            .arg(rotation.new_hash)
            .arg(rotation.new_expiry.millis())
            .arg(rotation.now.millis())
            .arg(MAX_USED_HASHES)
            .arg(i64::try_from(ttl).unwrap_or(i64::MAX))
            .arg(id.to_string())
            .arg(rotation.sealed_next)
            .arg(rotation.grace_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable("rotate refresh token"))?;
        // Built from the script's answer: reading the session back could race with a
        // concurrent reuse that revokes it, or with the rotation of a concurrent refresh.
        Ok(match verdict.as_str() {
            "rotated" => RefreshOutcome::Rotated(Session {
                refresh_hash: rotation.new_hash.to_owned(),
                used_hashes: a
                    .split('\n')
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect(),
                sealed_next: rotation.sealed_next.to_owned(),
                expires_at: rotation.new_expiry,
                last_refreshed_at: rotation.now,
                ..session
            }),
            "repeated" => RefreshOutcome::Repeated(Session {
                refresh_hash: a,
                sealed_next: b,
                ..session
            }),
            "reused" => RefreshOutcome::Reused,
            _ => RefreshOutcome::Invalid,
        })
    }
}

/// An event bus over Redis pub/sub: one channel; each message is the publishing
/// process's 16-byte origin tag followed by the message in MessagePack (fields by
/// name, as in the JSON API). Task events are most of the traffic, and MessagePack
/// writes their strings and ids as they are, where JSON escapes every byte of them.
///
/// A process hears its own messages at once, from memory, once Redis has taken them:
/// its subscription skips them by their tag instead of receiving and decoding them back.
pub struct RedisBus {
    conn: Lazy,
    channel: String,
    origin: Origin,
    tx: broadcast::Sender<SharedBusMessage>,
    subscriber: JoinHandle<()>,
}

/// Tells this process's messages from other processes' on the shared channel.
type Origin = [u8; 16];

/// The payload of `message` as published by `origin`.
fn tagged(origin: &Origin, message: &BusMessage) -> Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(256);
    payload.extend_from_slice(origin);
    rmp_serde::encode::write_named(&mut payload, message)
        .map_err(|e| Error::internal("encode bus message", e))?;
    Ok(payload)
}

/// What a received payload means to the process tagged `own`: `None` for its own
/// message (already delivered locally), else the message, or why it cannot be read.
fn untag(own: &Origin, payload: &[u8]) -> Option<std::result::Result<BusMessage, String>> {
    let Some((origin, body)) = payload.split_first_chunk::<16>() else {
        return Some(Err(format!(
            "{} bytes, shorter than its origin tag",
            payload.len()
        )));
    };
    if origin == own {
        return None;
    }
    Some(rmp_serde::from_slice(body).map_err(|e| e.to_string()))
}

impl RedisBus {
    /// Subscribes (waiting briefly for the first subscription so that nothing published
    /// right after start is missed) and keeps the subscription alive, reconnecting with
    /// backoff whenever Redis goes away.
    pub async fn start(settings: &RedisSettings) -> Result<Arc<RedisBus>> {
        let conn = Lazy::new(&settings.url)?;
        let channel = format!("{}bus", settings.prefix);
        let (tx, _) = broadcast::channel(65_536);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let origin = *uuid::Uuid::new_v4().as_bytes();
        let subscriber = tokio::spawn(subscribe_loop(
            conn.client.clone(),
            channel.clone(),
            origin,
            tx.clone(),
            ready_tx,
        ));
        if tokio::time::timeout(Duration::from_secs(3), ready_rx)
            .await
            .is_err()
        {
            tracing::warn!("Redis did not answer at start; the event bus keeps trying");
        }
        Ok(Arc::new(RedisBus {
            conn,
            channel,
            origin,
            tx,
            subscriber,
        }))
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    origin: Origin,
    tx: broadcast::Sender<SharedBusMessage>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    use futures::StreamExt;
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(IO_TIMEOUT, subscribed).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot subscribe to the Redis event bus");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        let mut stream = pubsub.into_on_message();
        while let Some(msg) = stream.next().await {
            match untag(&origin, msg.get_payload_bytes()) {
                None => {}
                Some(Ok(m)) => {
                    let _ = tx.send(Arc::new(m));
                }
                Some(Err(e)) => tracing::warn!(error = %e, "ignoring an unreadable bus message"),
            }
        }
        tracing::warn!("the Redis event-bus subscription ended; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

#[async_trait]
impl EventBus for RedisBus {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, message: SharedBusMessage) -> Result<()> {
        let payload = tagged(&self.origin, &message)?;
        let mut conn = self.conn.get().await?;
        let _: i64 = conn
            .publish(&self.channel, payload)
            .await
            .map_err(unavailable("publish"))?;
        let _ = self.tx.send(message);
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<SharedBusMessage> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of message, with every optional field both set and unset, reads back
    /// as it was sent.
    #[test]
    fn every_message_crosses_the_bus_unchanged() {
        use switchyard_core::event::TaskEvent;
        use switchyard_core::monitoring::{AlertEvent, AlertEventState, AlertKind, NotifyStatus};
        use switchyard_core::{TaskId, Timestamp, WorkerId};

        let at = Timestamp::from_millis(1_764_000_000_123);
        let events = TaskEvent::samples()
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        let messages = [
            BusMessage::Tasks { events },
            BusMessage::Wake {
                agents: vec!["a".into(), "b-2".into()],
            },
            BusMessage::Scheduled { at },
            BusMessage::AgentChanged {
                name: "summarize".into(),
            },
            BusMessage::Cancel {
                task_id: TaskId::new(),
                attempt: 4,
                worker_id: WorkerId::new(),
            },
            BusMessage::CredentialRevoked {
                key: "session:abc".into(),
            },
            BusMessage::Alert {
                event: Box::new(AlertEvent {
                    id: uuid::Uuid::now_v7(),
                    rule_id: uuid::Uuid::now_v7(),
                    rule_name: "errors".into(),
                    kind: AlertKind::FailureRate,
                    agent: Some("echo".into()),
                    state: AlertEventState::Firing,
                    value: 0.5,
                    threshold: 0.25,
                    at,
                    message: "error rate 50 %".into(),
                    webhook_url: None,
                    notify_status: NotifyStatus::Pending,
                    notify_attempts: 0,
                    next_notify_at: None,
                    notify_error: Some("HTTP 500".into()),
                }),
            },
        ];
        let (mine, theirs) = ([1u8; 16], [2u8; 16]);
        for message in messages {
            let payload = tagged(&mine, &message).unwrap();
            assert_eq!(untag(&theirs, &payload), Some(Ok(message)));
        }
    }

    #[test]
    fn a_process_skips_its_own_messages_and_reads_the_others() {
        let (mine, theirs) = ([1u8; 16], [2u8; 16]);
        let message = BusMessage::AgentChanged { name: "a".into() };
        let payload = tagged(&mine, &message).unwrap();
        assert_eq!(&payload[..16], &mine);
        assert!(untag(&mine, &payload).is_none());
        assert_eq!(untag(&theirs, &payload), Some(Ok(message)));
        assert!(matches!(untag(&theirs, b"short"), Some(Err(_))));
        let mut garbled = payload.clone();
        garbled.truncate(20);
        assert!(matches!(untag(&theirs, &garbled), Some(Err(_))));
    }
}
