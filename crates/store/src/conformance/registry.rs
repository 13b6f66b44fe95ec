//! Agents, workers and settings.

use super::*;

pub async fn agents_crud(store: SharedStore) {
    let spec = builtin_agents().remove(0);
    let mut agent = Agent {
        spec,
        builtin: true,
        created_at: t0(),
        updated_at: t0(),
    };
    store.put_agent(&agent).await.unwrap();
    assert_eq!(store.get_agent("echo").await.unwrap(), Some(agent.clone()));
    agent.spec.retry.max_attempts = 9;
    agent.updated_at = t0().plus_ms(1);
    store.put_agent(&agent).await.unwrap();
    let got = store.get_agent("echo").await.unwrap().unwrap();
    assert_eq!(got.spec.retry.max_attempts, 9);
    assert_eq!(got.created_at, t0(), "updates keep the creation time");
    assert_eq!(store.list_agents().await.unwrap().len(), 1);
    assert!(store.delete_agent("echo").await.unwrap());
    assert!(!store.delete_agent("echo").await.unwrap());
    assert!(store.get_agent("echo").await.unwrap().is_none());
}

pub async fn workers_registry(store: SharedStore) {
    let mut w = WorkerInfo {
        id: WorkerId::new(),
        name: "w1".into(),
        kind: "builtin".into(),
        agents: vec!["echo".into(), "sleep".into()],
        slots: 8,
        slots_in_use: 0,
        version: "0.1.0".into(),
        host: Some("box".into()),
        started_at: t0(),
        heartbeat_at: t0(),
    };
    store.upsert_worker(&w).await.unwrap();
    w.slots_in_use = 3;
    w.heartbeat_at = t0().plus_ms(10_000);
    store.upsert_worker(&w).await.unwrap();
    assert_eq!(
        store.list_workers(t0().plus_ms(5_000)).await.unwrap(),
        vec![w.clone()]
    );
    assert!(
        store
            .list_workers(t0().plus_ms(20_000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.prune_workers(t0().plus_ms(20_000)).await.unwrap(), 1);
    assert!(
        store
            .list_workers(Timestamp::EPOCH)
            .await
            .unwrap()
            .is_empty()
    );
    store.upsert_worker(&w).await.unwrap();
    store.remove_worker(w.id).await.unwrap();
    assert!(
        store
            .list_workers(Timestamp::EPOCH)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn settings_init_once(store: SharedStore) {
    assert_eq!(store.get_setting("k").await.unwrap(), None);
    assert_eq!(store.init_setting("k", "first").await.unwrap(), "first");
    assert_eq!(
        store.init_setting("k", "second").await.unwrap(),
        "first",
        "the first writer wins"
    );
    store.put_setting("k", "third").await.unwrap();
    assert_eq!(
        store.get_setting("k").await.unwrap().as_deref(),
        Some("third")
    );
}
