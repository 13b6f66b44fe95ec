//! Submissions: inserts, idempotency keys, batches and what content survives a round trip.

use super::*;

pub async fn insert_and_get(store: SharedStore) {
    let mut t = new_task("echo", 3, t0());
    t.owner_id = Some(UserId::new());
    t.parent_id = Some(TaskId::new());
    let out = insert(&store, vec![t.clone()]).await;
    assert!(matches!(&out[0], Submitted::Created(_)));
    let got = store
        .get_task(t.id)
        .await
        .unwrap()
        .expect("inserted task is readable");
    assert_eq!(
        got,
        out[0].task().clone(),
        "the returned task equals the stored one"
    );
    assert_eq!(got.status, TaskStatus::Queued);
    assert_eq!(got.input, t.input);
    assert_eq!(
        (got.priority, got.seq, got.owner_id, got.parent_id),
        (3, 1, t.owner_id, t.parent_id)
    );
    assert_eq!(got.trace_id, t.trace_id);
    assert!(got.attempts.is_empty());
    assert!(store.get_task(TaskId::new()).await.unwrap().is_none());

    let mut cached = new_task("echo", 0, t0());
    cached.cached_output = Some(json!({"from": "cache"}));
    insert(&store, vec![cached.clone()]).await;
    let got = store.get_task(cached.id).await.unwrap().unwrap();
    assert_eq!(got.status, TaskStatus::Succeeded);
    assert!(got.cached);
    assert_eq!(got.output, Some(json!({"from": "cache"})));
    assert_eq!(got.finished_at, Some(t0()));
}

pub async fn idempotency_keys(store: SharedStore) {
    let owner = Some(UserId::new());
    let mut a = new_task("echo", 0, t0());
    a.owner_id = owner;
    a.idempotency_key = Some("order-42".into());
    let first = insert(&store, vec![a.clone()]).await;
    assert!(matches!(first[0], Submitted::Created(_)));

    let mut again = new_task("echo", 0, t0().plus_ms(10));
    again.owner_id = owner;
    again.idempotency_key = Some("order-42".into());
    let out = insert(&store, vec![again.clone()]).await;
    match &out[0] {
        Submitted::Existing(t) => assert_eq!(t.id, a.id),
        other => panic!("expected the existing task, got {other:?}"),
    }
    assert!(
        store.get_task(again.id).await.unwrap().is_none(),
        "the duplicate was not stored"
    );

    // Same key, another owner: a different task.
    let mut other_owner = again.clone();
    other_owner.id = TaskId::new();
    other_owner.owner_id = Some(UserId::new());
    assert!(matches!(
        insert(&store, vec![other_owner]).await[0],
        Submitted::Created(_)
    ));

    // Two with one key in the same batch: the second gets the first.
    let mut x = new_task("echo", 0, t0());
    x.owner_id = owner;
    x.idempotency_key = Some("batch-key".into());
    let mut y = x.clone();
    y.id = TaskId::new();
    let out = store
        .insert_tasks(vec![x.clone(), y], Timestamp::EPOCH)
        .await
        .unwrap();
    assert!(matches!(out[0], Submitted::Created(_)));
    assert_eq!(out[1].task().id, x.id);

    // Outside the window, the key is free again.
    let mut later = new_task("echo", 0, t0().plus_ms(100_000));
    later.owner_id = owner;
    later.idempotency_key = Some("order-42".into());
    let out = store
        .insert_tasks(vec![later.clone()], t0().plus_ms(50_000))
        .await
        .unwrap();
    assert!(
        matches!(out[0], Submitted::Created(_)),
        "a key older than the window is reusable"
    );
}

/// A batch is all or nothing: a task id that already exists fails it, and none of its
/// other tasks is inserted.
pub async fn duplicate_ids_fail_the_whole_batch(store: SharedStore) {
    let first = new_task("dup", 0, t0());
    insert(&store, vec![first.clone()]).await;
    let other = new_task("dup", 0, t0());
    let again = store
        .insert_tasks(vec![other.clone(), first.clone()], Timestamp::EPOCH)
        .await;
    assert!(again.is_err(), "a reused id is an error: {again:?}");
    assert!(store.get_task(other.id).await.unwrap().is_none());
    let after = new_task("dup", 0, t0());
    insert(&store, vec![after.clone()]).await;
    assert!(store.get_task(after.id).await.unwrap().is_some());
}

/// `null` is a value: a task that output JSON null or was cached as null keeps it, and
/// a task without output has none.
pub async fn null_outputs_stay_distinct(store: SharedStore) {
    let mut cached = new_task("nulls", 0, t0());
    cached.cached_output = Some(serde_json::Value::Null);
    let run = new_task("nulls", 0, t0());
    let waiting = new_task("nulls", 0, t0());
    insert(&store, vec![cached.clone(), run.clone(), waiting.clone()]).await;
    let c = store.get_task(cached.id).await.unwrap().unwrap();
    assert_eq!(c.status, TaskStatus::Succeeded);
    assert_eq!(c.output, Some(serde_json::Value::Null));
    let claimed = claim(&store, WorkerId::new(), t0(), "nulls", 1).await;
    assert_eq!(claimed[0].id, run.id);
    store
        .complete_tasks(&[done(
            &claimed[0],
            t0(),
            Outcome::Succeeded {
                output: serde_json::Value::Null,
            },
        )])
        .await
        .unwrap();
    let r = store.get_task(run.id).await.unwrap().unwrap();
    assert_eq!(r.output, Some(serde_json::Value::Null));
    assert_eq!(r.error, None);
    let w = store.get_task(waiting.id).await.unwrap().unwrap();
    assert_eq!(w.output, None);
    assert_eq!(w.error, None);
}

/// Task content is stored as given, U+0000 and U+FFFF included, on every write path
/// (fresh batches, idempotent batches, cached outputs, completions, attempts, logs) and
/// read back the same by every read (get, list, claim, logs, search).
pub async fn content_keeps_nul_and_the_escape_character(store: SharedStore) {
    let tricky = json!({
        "nul\u{0}key": "a\u{0}b", "esc": "\u{FFFF}0 \u{FFFF}F \u{FFFF}", "list": ["\u{0}", 1, null],
        "words": "zebra\u{0}quokka"
    });
    let mut plain = new_task("nul", 0, t0());
    plain.input = tricky.clone();
    let mut keyed = new_task("nul", 0, t0());
    keyed.input = tricky.clone();
    keyed.idempotency_key = Some("nul-content".into());
    let mut cached = new_task("nul", 0, t0());
    cached.cached_output = Some(tricky.clone());
    insert(&store, vec![plain.clone()]).await;
    insert(&store, vec![keyed.clone(), cached.clone()]).await;
    for id in [plain.id, keyed.id] {
        assert_eq!(store.get_task(id).await.unwrap().unwrap().input, tricky);
    }
    assert_eq!(
        store.get_task(cached.id).await.unwrap().unwrap().output,
        Some(tricky.clone())
    );
    let listed = store
        .list_tasks(&TaskQuery {
            agent: Some("nul".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        listed
            .iter()
            .all(|t| t.input == tricky || t.output == Some(tricky.clone()))
    );

    let worker = WorkerId::new();
    let claimed = claim(&store, worker, t0(), "nul", 10).await;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|c| c.input == tricky));
    let line = "log \u{0} line \u{FFFF}";
    let recorded = store
        .record_events(
            vec![EventDraft {
                task_id: claimed[0].id,
                attempt: claimed[0].attempt,
                at: t0(),
                body: EventBody::Log {
                    level: LogLevel::Warn,
                    message: line.into(),
                },
            }],
            10_000,
        )
        .await
        .unwrap();
    assert!(recorded[0].seq.is_some());
    let logs = store.task_logs(claimed[0].id, 0, 10).await.unwrap();
    assert_eq!(logs[0].message, line);
    let found = store
        .query_task_logs(&LogQuery {
            task_id: claimed[0].id,
            after_seq: 0,
            min_level: None,
            contains: Some("line \u{FFFF}".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "a search for the escape character finds it");
    assert_eq!(found[0].message, line);

    let mut error = TaskError::retryable("e\u{0}", "failed \u{0} here \u{FFFF}");
    error.details = Some(Box::new(tricky.clone()));
    store
        .complete_tasks(&[
            done(
                &claimed[0],
                t0(),
                Outcome::Succeeded {
                    output: tricky.clone(),
                },
            ),
            done(
                &claimed[1],
                t0(),
                Outcome::Retry {
                    error: error.clone(),
                    run_at: t0(),
                },
            ),
        ])
        .await
        .unwrap();
    let succeeded = store.get_task(claimed[0].id).await.unwrap().unwrap();
    assert_eq!(succeeded.output, Some(tricky.clone()));
    let retrying = store.get_task(claimed[1].id).await.unwrap().unwrap();
    assert_eq!(retrying.error.as_ref(), Some(&error));
    assert_eq!(retrying.attempts[0].error.as_ref(), Some(&error));

    assert!(store.index_tasks(1_000).await.unwrap() >= 3);
    let hits = store
        .list_tasks(&TaskQuery {
            text: Some("quokka".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hits.len(), 3, "U+0000 separates words like any other space");
}

pub async fn idempotency_keys_expire(store: SharedStore) {
    let mut t = new_task("echo", 0, t0());
    t.idempotency_key = Some("k".into());
    insert(&store, vec![t.clone()]).await;
    assert_eq!(store.expire_idempotency_keys(t0()).await.unwrap(), 0);
    assert_eq!(
        store
            .expire_idempotency_keys(t0().plus_ms(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_task(t.id).await.unwrap().unwrap().idempotency_key,
        None
    );
}

pub async fn large_batches(store: SharedStore) {
    // 2,000 rows: SQLite sends them as many statements of bound rows, the last one padded.
    let tasks: Vec<NewTask> = (0..2_000)
        .map(|i| {
            let mut t = new_task("bulk", i % 3, t0());
            t.input = json!({"i": i});
            t
        })
        .collect();
    let out = insert(&store, tasks.clone()).await;
    assert!(out.iter().all(|s| matches!(s, Submitted::Created(_))));
    for i in [0, 255, 256, 1_999] {
        let got = store
            .get_task(tasks[i].id)
            .await
            .unwrap()
            .expect("inserted");
        assert_eq!(got.input, json!({"i": i}), "row {i} holds its own input");
    }
    let worker = WorkerId::new();
    let claimed = claim(&store, worker, t0(), "bulk", 2_000).await;
    assert_eq!(claimed.len(), 2_000);
    // Mixed outcomes, each naming its task, so a row landing on another task shows.
    let retry_at = t0().plus_ms(60_000);
    let completions: Vec<Completion> = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let outcome = match i % 3 {
                0 => Outcome::Succeeded {
                    output: json!({"of": c.id.to_string()}),
                },
                1 => Outcome::Dead {
                    error: TaskError::permanent("bulk", c.id.to_string()),
                },
                _ => Outcome::Retry {
                    error: TaskError::retryable("bulk", c.id.to_string()),
                    run_at: retry_at,
                },
            };
            done(c, t0(), outcome)
        })
        .collect();
    let r = store.complete_tasks(&completions).await.unwrap();
    assert_eq!(r.transitions.len(), 2_000);
    assert!(r.rejected.is_empty());
    for (i, c) in claimed.iter().enumerate().filter(|(i, _)| i % 97 < 3) {
        let got = store.get_task(c.id).await.unwrap().expect("completed");
        match i % 3 {
            0 => {
                assert_eq!(got.status, TaskStatus::Succeeded);
                assert_eq!(got.output, Some(json!({"of": c.id.to_string()})));
            }
            1 => {
                assert_eq!(got.status, TaskStatus::Dead);
                assert_eq!(got.error.map(|e| e.message), Some(c.id.to_string()));
            }
            _ => {
                assert_eq!(got.status, TaskStatus::Retrying);
                assert_eq!(got.run_at, retry_at);
                assert_eq!(got.attempts.len(), 1, "the failed attempt is recorded");
            }
        }
    }
    let again = claim(&store, worker, retry_at, "bulk", 2_000).await;
    assert_eq!(
        again.len(),
        666,
        "every retry, nothing else, is queued again"
    );
    let completions: Vec<Completion> = again
        .iter()
        .map(|c| {
            done(
                c,
                retry_at,
                Outcome::Succeeded {
                    output: json!(null),
                },
            )
        })
        .collect();
    assert_eq!(
        store
            .complete_tasks(&completions)
            .await
            .unwrap()
            .transitions
            .len(),
        666
    );
    let stats = store.queue_stats(retry_at).await.unwrap();
    assert!(
        stats.iter().all(|s| s.agent != "bulk"),
        "nothing of the batch left waiting or running"
    );
}

pub async fn large_idempotent_batches(store: SharedStore) {
    let owner = Some(UserId::new());
    let keyed = |k: usize| {
        let mut t = new_task("keyed", 0, t0());
        t.owner_id = owner;
        t.idempotency_key = Some(format!("k{k}"));
        t.input = json!({"k": k});
        t
    };
    let first: Vec<NewTask> = (0..100).map(keyed).collect();
    let out = insert(&store, first.clone()).await;
    assert!(out.iter().all(|s| matches!(s, Submitted::Created(_))));
    // Keys 50..200: the first 50 exist, spread over more than one statement on SQLite.
    let out = insert(&store, (50..200).map(keyed).collect()).await;
    assert_eq!(out.len(), 150);
    for (i, s) in out.iter().enumerate() {
        let k = 50 + i;
        match s {
            Submitted::Existing(t) if k < 100 => assert_eq!(t.id, first[k].id, "key k{k}"),
            Submitted::Created(t) if k >= 100 => assert_eq!(t.input, json!({"k": k})),
            other => panic!("key k{k}: unexpected {other:?}"),
        }
    }
    let stats = store.queue_stats(t0()).await.unwrap();
    let keyed_stats = stats.iter().find(|s| s.agent == "keyed").expect("queued");
    assert_eq!(keyed_stats.ready, 200, "each key once");
}
