//! The cache conformance suite on Redis.
//!
//! Runs against `TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`); without it every test
//! prints loudly that it was skipped. Each test uses its own random key prefix (and so
//! its own bus channel), so tests share one Redis without seeing each other.

use switchyard_cache::conformance::Backends;
use switchyard_cache::{RedisBus, RedisCache, RedisSettings};
use switchyard_core::SessionId;

async fn redis() -> Option<Backends> {
    let url = match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!(
                "SKIPPED: TEST_REDIS_URL not set — Redis cache conformance suite did not run"
            );
            return None;
        }
    };
    let mut settings = RedisSettings::new(url);
    settings.prefix = format!("sy-test:{}:", SessionId::new());
    let cache = RedisCache::new(&settings).expect("redis settings");
    let bus = RedisBus::start(&settings).await.expect("redis bus");
    Some((std::sync::Arc::new(cache), bus))
}

switchyard_cache::cache_conformance_tests!(redis);

/// What a bus subscriber hears next (failing after 10 s of silence).
async fn next(
    rx: &mut tokio::sync::broadcast::Receiver<switchyard_core::event::SharedBusMessage>,
) -> switchyard_core::event::SharedBusMessage {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("delivered")
        .unwrap()
}

/// Two processes on one Redis: a message published by either reaches both, each once
/// (the publisher's own copy from memory, not again from Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_spans_processes() {
    use std::sync::Arc;
    use std::time::Duration;
    use switchyard_core::cache::EventBus;
    use switchyard_core::event::BusMessage;
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("SKIPPED: TEST_REDIS_URL not set — Redis cache conformance suite did not run");
        return;
    };
    let mut settings = RedisSettings::new(url);
    settings.prefix = format!("sy-test:{}:", SessionId::new());
    let a = RedisBus::start(&settings).await.unwrap();
    let b = RedisBus::start(&settings).await.unwrap();
    let (mut ra, mut rb) = (a.subscribe(), b.subscribe());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let msg = Arc::new(BusMessage::Wake {
        agents: vec!["x".into()],
    });
    a.publish(msg.clone()).await.unwrap();
    for rx in [&mut ra, &mut rb] {
        assert_eq!(*next(rx).await, *msg);
    }
    // A second message, from the other process: whatever either hears next is it, so
    // neither heard the first one twice.
    let second = Arc::new(BusMessage::AgentChanged { name: "y".into() });
    b.publish(second.clone()).await.unwrap();
    for rx in [&mut ra, &mut rb] {
        assert_eq!(*next(rx).await, *second, "a message arrived twice");
    }
}

/// The Redis rate limiter: the same rule as the database's, shared by every process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_space_starts() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("SKIPPED: TEST_REDIS_URL not set — Redis cache conformance suite did not run");
        return;
    };
    let mut settings = RedisSettings::new(url);
    settings.prefix = format!("sy-test:{}:", SessionId::new());
    let cache = RedisCache::new(&settings).unwrap();
    // The pause and refund use the real clock for key expiry: start from now.
    let now = switchyard_core::Timestamp::now();
    switchyard_core::flow::conformance::rate_limiter_spaces_starts(&cache, "limited", now).await;
}
