//! The cache and bus conformance suite, run on every implementation.

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
use switchyard_core::cache::{Cache, EventBus};
use switchyard_core::event::BusMessage;
use switchyard_core::{SessionId, Timestamp, UserId};

#[macro_export]
macro_rules! cache_conformance_tests {
    ($make:path) => {
        $crate::cache_conformance_tests!(@each $make;
            kv_get_set_delete_and_ttl, counters_count_within_a_window, sessions_store_list_delete,
            refresh_rotation_and_reuse_detection, concurrent_rotations_have_one_winner,
            a_repeated_refresh_within_the_grace_window_gets_the_same_token,
            bus_delivers_to_every_subscriber);
    };
    (@each $make:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((cache, bus)) = $make().await else { return };
                $crate::conformance::$check(cache, bus).await;
            }
        )*
    };
}

pub type Backends = (Arc<dyn Cache>, Arc<dyn EventBus>);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    SessionId::new().to_string()
}

fn session(user: UserId) -> Session {
    let now = Timestamp::now();
    Session {
        id: SessionId::new(),
        user_id: user,
        created_at: now,
        expires_at: now.plus_ms(60_000),
        last_refreshed_at: now,
        user_agent: Some("test".into()),
        ip: Some("127.0.0.1".into()),
        refresh_hash: "h0".into(),
        used_hashes: vec![],
        sealed_next: String::new(),
    }
}

/// A rotation from `presented` to `new` (sealed as `sealed-<new>`).
fn rotation<'a>(
    presented: &'a str,
    new: &'a str,
    sealed: &'a str,
    new_expiry: Timestamp,
    now: Timestamp,
    grace_ms: u64,
) -> Rotation<'a> {
    Rotation {
        presented_hash: presented,
        new_hash: new,
        sealed_next: sealed,
        new_expiry,
        now,
        grace_ms,
    }
}

pub async fn kv_get_set_delete_and_ttl(cache: Arc<dyn Cache>, _bus: Arc<dyn EventBus>) {
    let k = unique("kv");
    assert_eq!(cache.get(&k).await.unwrap(), None);
    cache.set(&k, b"v1", Duration::from_secs(30)).await.unwrap();
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some(&b"v1"[..]));
    cache.set(&k, b"v2", Duration::from_secs(30)).await.unwrap();
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(cache.delete(&k).await.unwrap());
    assert!(!cache.delete(&k).await.unwrap());
    let short = unique("ttl");
    cache
        .set(&short, b"x", Duration::from_millis(150))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get(&short).await.unwrap(), None, "entries expire");
}

pub async fn counters_count_within_a_window(cache: Arc<dyn Cache>, _bus: Arc<dyn EventBus>) {
    let k = unique("ctr");
    assert_eq!(
        cache.incr(&k, 1, Duration::from_millis(300)).await.unwrap(),
        1
    );
    assert_eq!(
        cache.incr(&k, 2, Duration::from_millis(300)).await.unwrap(),
        3
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        cache.incr(&k, 1, Duration::from_millis(300)).await.unwrap(),
        1,
        "a new window starts at zero"
    );
    let mut handles = Vec::new();
    let k2 = unique("ctr");
    for _ in 0..8 {
        let cache = cache.clone();
        let k2 = k2.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..25 {
                cache.incr(&k2, 1, Duration::from_secs(30)).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(
        cache.incr(&k2, 0, Duration::from_secs(30)).await.unwrap(),
        200,
        "increments are atomic"
    );
}

pub async fn sessions_store_list_delete(cache: Arc<dyn Cache>, _bus: Arc<dyn EventBus>) {
    let user = UserId::new();
    let a = session(user);
    let b = session(user);
    cache.put_session(&a).await.unwrap();
    cache.put_session(&b).await.unwrap();
    cache.put_session(&session(UserId::new())).await.unwrap();
    assert_eq!(cache.get_session(a.id).await.unwrap(), Some(a.clone()));
    let mine = cache.list_sessions(user).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(cache.delete_session(a.id).await.unwrap());
    assert!(!cache.delete_session(a.id).await.unwrap());
    assert_eq!(cache.get_session(a.id).await.unwrap(), None);
    assert_eq!(cache.list_sessions(user).await.unwrap(), vec![b.clone()]);
    let mut expired = session(user);
    expired.expires_at = Timestamp::now().minus_ms(1);
    cache.put_session(&expired).await.unwrap();
    assert_eq!(
        cache.get_session(expired.id).await.unwrap(),
        None,
        "expired sessions are gone"
    );
}

pub async fn refresh_rotation_and_reuse_detection(cache: Arc<dyn Cache>, _bus: Arc<dyn EventBus>) {
    let s = session(UserId::new());
    cache.put_session(&s).await.unwrap();
    let now = Timestamp::now();
    let later = now.plus_ms(120_000);
    match cache
        .rotate_refresh(s.id, &rotation("h0", "h1", "sealed", later, now, 0))
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated(r) => {
            assert_eq!((r.refresh_hash.as_str(), r.expires_at), ("h1", later));
            assert!(r.used_hashes.contains(&"h0".to_owned()));
        }
        other => panic!("expected rotation, got {other:?}"),
    }
    assert_eq!(
        cache
            .rotate_refresh(
                s.id,
                &rotation("never-issued", "hx", "sealed", later, now, 0)
            )
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(
        cache.get_session(s.id).await.unwrap().is_some(),
        "a bad guess does not revoke"
    );
    assert_eq!(
        cache
            .rotate_refresh(s.id, &rotation("h0", "h2", "sealed", later, now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Reused
    );
    assert_eq!(
        cache.get_session(s.id).await.unwrap(),
        None,
        "reuse revokes the whole session"
    );
    assert_eq!(
        cache
            .rotate_refresh(s.id, &rotation("h1", "h3", "sealed", later, now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        cache
            .rotate_refresh(
                SessionId::new(),
                &rotation("h0", "h1", "sealed", later, now, 0)
            )
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
}

pub async fn concurrent_rotations_have_one_winner(cache: Arc<dyn Cache>, _bus: Arc<dyn EventBus>) {
    for grace_ms in [0, 30_000] {
        let s = session(UserId::new());
        cache.put_session(&s).await.unwrap();
        let now = Timestamp::now();
        let mut handles = Vec::new();
        for i in 0..8 {
            let cache = cache.clone();
            handles.push(tokio::spawn(async move {
                let (new, sealed) = (format!("n{i}"), format!("sealed-n{i}"));
                let r = rotation("h0", &new, &sealed, now.plus_ms(60_000), now, grace_ms);
                cache.rotate_refresh(s.id, &r).await.unwrap()
            }));
        }
        let (mut rotated, mut repeated) = (Vec::new(), Vec::new());
        for h in handles {
            match h.await.unwrap() {
                RefreshOutcome::Rotated(r) => rotated.push(r),
                RefreshOutcome::Repeated(r) => repeated.push(r),
                // Without a grace window, the just-used token again is reuse: the
                // session is revoked.
                RefreshOutcome::Reused | RefreshOutcome::Invalid => {}
            }
        }
        assert_eq!(rotated.len(), 1, "a refresh token rotates once");
        if grace_ms > 0 {
            let winner = &rotated[0];
            assert_eq!(
                repeated.len(),
                7,
                "within the grace window every repeat is answered"
            );
            for r in &repeated {
                assert_eq!(
                    (&r.refresh_hash, &r.sealed_next),
                    (
                        &winner.refresh_hash,
                        &format!("sealed-{}", winner.refresh_hash)
                    ),
                    "a repeat gets the winner's token"
                );
            }
            let live = cache
                .get_session(s.id)
                .await
                .unwrap()
                .expect("the session lives");
            assert_eq!(live.refresh_hash, winner.refresh_hash);
        }
    }
}

pub async fn a_repeated_refresh_within_the_grace_window_gets_the_same_token(
    cache: Arc<dyn Cache>,
    _bus: Arc<dyn EventBus>,
) {
    let grace = 10_000;
    let s = session(UserId::new());
    cache.put_session(&s).await.unwrap();
    let now = Timestamp::now();
    let later = now.plus_ms(120_000);
    let rotated = cache
        .rotate_refresh(s.id, &rotation("h0", "h1", "s1", later, now, grace))
        .await
        .unwrap();
    assert!(matches!(rotated, RefreshOutcome::Rotated(_)), "{rotated:?}");
    match cache
        .rotate_refresh(
            s.id,
            &rotation("h0", "h1b", "s1b", later, now.plus_ms(5_000), grace),
        )
        .await
        .unwrap()
    {
        RefreshOutcome::Repeated(r) => {
            assert_eq!(
                (r.refresh_hash.as_str(), r.sealed_next.as_str()),
                ("h1", "s1")
            );
        }
        other => panic!("expected a repeat, got {other:?}"),
    }
    let live = cache.get_session(s.id).await.unwrap().expect("not revoked");
    assert_eq!(live.refresh_hash, "h1", "a repeat changes nothing");
    // The repeat's answer works: it rotates on.
    let rotated = cache
        .rotate_refresh(
            s.id,
            &rotation("h1", "h2", "s2", later, now.plus_ms(6_000), grace),
        )
        .await
        .unwrap();
    assert!(matches!(rotated, RefreshOutcome::Rotated(_)), "{rotated:?}");
    assert_eq!(
        cache
            .rotate_refresh(
                s.id,
                &rotation("h0", "hx", "sx", later, now.plus_ms(7_000), grace)
            )
            .await
            .unwrap(),
        RefreshOutcome::Reused,
        "a token two rotations old is reuse, even within the window"
    );
    assert_eq!(cache.get_session(s.id).await.unwrap(), None, "revoked");

    let s = session(UserId::new());
    cache.put_session(&s).await.unwrap();
    let rotated = cache
        .rotate_refresh(s.id, &rotation("h0", "h1", "s1", later, now, grace))
        .await
        .unwrap();
    assert!(matches!(rotated, RefreshOutcome::Rotated(_)), "{rotated:?}");
    assert_eq!(
        cache
            .rotate_refresh(
                s.id,
                &rotation("h0", "hx", "sx", later, now.plus_ms(grace), grace)
            )
            .await
            .unwrap(),
        RefreshOutcome::Reused,
        "the spent token after the window is reuse"
    );
    assert_eq!(cache.get_session(s.id).await.unwrap(), None, "revoked");
}

pub async fn bus_delivers_to_every_subscriber(_cache: Arc<dyn Cache>, bus: Arc<dyn EventBus>) {
    let mut a = bus.subscribe();
    let mut b = bus.subscribe();
    // Give subscriptions that go over the network a moment to be established.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let name = unique("agent");
    let msg = Arc::new(BusMessage::AgentChanged { name: name.clone() });
    bus.publish(msg.clone()).await.unwrap();
    for rx in [&mut a, &mut b] {
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let m = rx.recv().await.expect("bus open");
                if *m == *msg {
                    return m;
                }
            }
        })
        .await
        .expect("message delivered");
        assert_eq!(*got, BusMessage::AgentChanged { name: name.clone() });
    }
}
