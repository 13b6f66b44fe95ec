//! Task lists, queue statistics and full-text search.

use super::*;

pub async fn list_filters_and_cursor(store: SharedStore) {
    let alice = UserId::new();
    let bob = UserId::new();
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut t = new_task(if i % 2 == 0 { "even" } else { "odd" }, 0, t0().plus_ms(i));
        t.owner_id = Some(if i < 5 { alice } else { bob });
        ids.push(t.id);
        insert(&store, vec![t]).await;
    }
    let q = |f: &dyn Fn(&mut TaskQuery)| {
        let mut q = TaskQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = store.list_tasks(&q(&|_| {})).await.unwrap();
    assert!(all.len() >= 7);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let mine = store
        .list_tasks(&q(&|q| q.owner_id = Some(alice)))
        .await
        .unwrap();
    assert_eq!(mine.len(), 5);
    assert!(mine.iter().all(|t| t.owner_id == Some(alice)));
    let even_alice = store
        .list_tasks(&q(&|q| {
            q.owner_id = Some(alice);
            q.agent = Some("even".into())
        }))
        .await
        .unwrap();
    assert_eq!(even_alice.len(), 3);
    // Cursor pagination walks every task exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_tasks(&q(&|q| {
                q.owner_id = Some(alice);
                q.limit = 2;
                q.before_id = cursor
            }))
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|t| t.id);
        seen.extend(page.into_iter().map(|t| t.id));
    }
    let mut expected: Vec<TaskId> = ids[..5].to_vec();
    expected.reverse();
    assert_eq!(seen, expected);
    // Status and time filters.
    claim(&store, WorkerId::new(), t0().plus_ms(100), "odd", 1).await;
    let running = store
        .list_tasks(&q(&|q| {
            q.owner_id = Some(alice);
            q.statuses = vec![TaskStatus::Running]
        }))
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].attempts.len(), 1, "lists carry attempts too");
    let both = store
        .list_tasks(&q(&|q| {
            q.owner_id = Some(alice);
            q.statuses = vec![TaskStatus::Running, TaskStatus::Queued]
        }))
        .await
        .unwrap();
    assert_eq!(both.len(), 5);
    let window = store
        .list_tasks(&q(&|q| {
            q.owner_id = Some(alice);
            q.created_after = Some(t0().plus_ms(1));
            q.created_before = Some(t0().plus_ms(3))
        }))
        .await
        .unwrap();
    assert_eq!(window.len(), 2);
}

pub async fn queue_stats_and_ready_agents(store: SharedStore) {
    let mut delayed = new_task("stats", 0, t0());
    delayed.run_at = t0().plus_ms(1_000);
    insert(
        &store,
        vec![
            new_task("stats", 0, t0()),
            new_task("stats", 0, t0().plus_ms(5)),
            delayed,
        ],
    )
    .await;
    insert(&store, vec![new_task("stats2", 0, t0())]).await;
    claim(&store, WorkerId::new(), t0().plus_ms(10), "stats2", 1).await;
    let stats = store.queue_stats(t0().plus_ms(10)).await.unwrap();
    let s = stats
        .iter()
        .find(|s| s.agent == "stats")
        .expect("stats for the agent");
    assert_eq!((s.ready, s.scheduled, s.running), (2, 1, 0));
    assert_eq!(s.oldest_ready_at, Some(t0()));
    let s2 = stats.iter().find(|s| s.agent == "stats2").unwrap();
    assert_eq!((s2.ready, s2.running), (0, 1));
    let ready = store.ready_agents(t0().plus_ms(10)).await.unwrap();
    assert!(ready.contains(&"stats".to_owned()) && !ready.contains(&"stats2".to_owned()));
}

/// A small queue beside a long history, for the backends' plan tests (`tests/*.rs`):
/// `finished` tasks of agent `a` that already succeeded, 30 waiting (run at t0 + 1 …
/// t0 + 30 ms) and 7 running. Checks what `queue_stats` says of them at the time it
/// returns (t0 + 10 ms).
pub async fn queue_beside_history(store: &SharedStore, finished: usize) -> Timestamp {
    let done: Vec<NewTask> = (0..finished)
        .map(|_| {
            let mut t = new_task("a", 0, t0());
            t.cached_output = Some(json!("done"));
            t
        })
        .collect();
    for chunk in done.chunks(1_000) {
        insert(store, chunk.to_vec()).await;
    }
    let waiting = (1..=30).map(|ms| {
        let mut t = new_task("a", 0, t0());
        t.run_at = t0().plus_ms(ms);
        t
    });
    let lease = DirectClaim {
        worker_id: WorkerId::new(),
        worker_name: "plans".into(),
        lease_expires_at: t0().plus_ms(LEASE_MS),
    };
    let running = (0..7).map(|_| {
        let mut t = new_task("a", 0, t0());
        t.claim = Some(lease.clone());
        t
    });
    insert(store, waiting.chain(running).collect()).await;
    let at = t0().plus_ms(10);
    let stats = store.queue_stats(at).await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].ready, stats[0].scheduled, stats[0].running),
        (10, 20, 7)
    );
    assert_eq!(stats[0].oldest_ready_at, Some(t0().plus_ms(1)));
    at
}

pub async fn full_text_search(store: SharedStore) {
    let alice = UserId::new();
    let mut a = new_task("searcher", 0, t0());
    a.input = json!({"city": "Zürich", "note": "quarterly-report"});
    a.owner_id = Some(alice);
    let mut b = new_task("searcher", 0, t0());
    b.input = json!({"city": "Lyon"});
    insert(&store, vec![a.clone(), b.clone()]).await;
    let search = |text: &str, owner: Option<UserId>| TaskQuery {
        text: Some(text.into()),
        owner_id: owner,
        limit: 100,
        ..Default::default()
    };
    let ids = |tasks: Vec<switchyard_core::task::Task>| {
        tasks.into_iter().map(|t| t.id).collect::<Vec<_>>()
    };
    assert!(
        store
            .list_tasks(&search("zürich", None))
            .await
            .unwrap()
            .is_empty(),
        "nothing is indexed yet"
    );
    assert!(store.index_tasks(1_000).await.unwrap() >= 2);
    assert_eq!(
        ids(store.list_tasks(&search("ZÜRICH", None)).await.unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(store
            .list_tasks(&search("quarterly report", None))
            .await
            .unwrap()),
        vec![a.id]
    );
    assert!(
        store
            .list_tasks(&search("zürich lyon", None))
            .await
            .unwrap()
            .is_empty(),
        "every word"
    );
    assert!(
        store
            .list_tasks(&search("lyon", Some(alice)))
            .await
            .unwrap()
            .is_empty(),
        "ownership"
    );
    assert_eq!(
        ids(store
            .list_tasks(&search("searcher", Some(alice)))
            .await
            .unwrap()),
        vec![a.id]
    );
    assert!(
        store
            .list_tasks(&search("\" OR *", None))
            .await
            .unwrap()
            .is_empty(),
        "no syntax"
    );
    // Output, error and log lines are searchable once the task finished.
    let c = claim(&store, WorkerId::new(), t0(), "searcher", 2).await;
    let ca = c.iter().find(|x| x.id == a.id).unwrap();
    let cb = c.iter().find(|x| x.id == b.id).unwrap();
    store
        .record_events(
            vec![EventDraft {
                task_id: a.id,
                attempt: ca.attempt,
                at: t0(),
                body: EventBody::Log {
                    level: LogLevel::Info,
                    message: "contacted the weatherstation".into(),
                },
            }],
            10_000,
        )
        .await
        .unwrap();
    store.index_tasks(1_000).await.unwrap();
    assert!(
        store
            .list_tasks(&search("weatherstation", None))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .complete_tasks(&[
            done(
                ca,
                t0(),
                Outcome::Succeeded {
                    output: json!({"forecast": "sunny"}),
                },
            ),
            done(
                cb,
                t0(),
                Outcome::Dead {
                    error: TaskError::permanent("geo_failed", "unknown place"),
                },
            ),
        ])
        .await
        .unwrap();
    assert!(store.index_tasks(1_000).await.unwrap() >= 2);
    assert_eq!(
        ids(store.list_tasks(&search("sunny", None)).await.unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(store
            .list_tasks(&search("weatherstation", None))
            .await
            .unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(store.list_tasks(&search("geo_failed", None)).await.unwrap()),
        vec![b.id]
    );
    assert_eq!(
        ids(store.list_tasks(&search("Zürich", None)).await.unwrap()),
        vec![a.id],
        "still found by input"
    );
    assert_eq!(
        store.index_tasks(1_000).await.unwrap(),
        0,
        "nothing left to do"
    );
}
