//! Completions: attempts, stale results, retries, fallbacks, cancellation and replay.

use super::*;

pub async fn success_records_attempt(store: SharedStore) {
    let t = new_task("echo", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let worker = WorkerId::new();
    let c = claim(&store, worker, t0(), "echo", 1).await.remove(0);
    let at = t0().plus_ms(5);
    let result = store
        .complete_tasks(&[done(
            &c,
            at,
            Outcome::Succeeded {
                output: json!({"ok": true}),
            },
        )])
        .await
        .unwrap();
    assert!(result.rejected.is_empty());
    let tr = &result.transitions[0];
    assert_eq!(
        (tr.status, tr.seq, tr.attempt),
        (TaskStatus::Succeeded, 3, 1)
    );
    assert_eq!(tr.output, Some(json!({"ok": true})));
    assert!(matches!(tr.event_body(), EventBody::Result { .. }));
    let got = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(got.status, TaskStatus::Succeeded);
    assert_eq!(got.output, Some(json!({"ok": true})));
    assert_eq!(got.finished_at, Some(at));
    assert_eq!(got.attempts.len(), 1);
    let a = &got.attempts[0];
    assert_eq!(
        (a.number, a.status, a.worker_id),
        (1, AttemptStatus::Succeeded, Some(worker))
    );
    assert_eq!((a.started_at, a.finished_at), (t0(), Some(at)));
    assert_eq!(a.worker.as_deref(), Some("conformance"));
}

pub async fn stale_results_are_rejected(store: SharedStore) {
    let t = new_task("echo", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let c = claim(&store, WorkerId::new(), t0(), "echo", 1)
        .await
        .remove(0);
    let wrong_attempt = Completion {
        attempt: c.attempt + 1,
        ..done(&c, t0(), Outcome::Succeeded { output: json!(1) })
    };
    let r = store.complete_tasks(&[wrong_attempt]).await.unwrap();
    assert_eq!(r.rejected, vec![t.id]);
    assert!(r.transitions.is_empty());
    let ok = store
        .complete_tasks(&[done(&c, t0(), Outcome::Succeeded { output: json!(2) })])
        .await
        .unwrap();
    assert_eq!(ok.transitions.len(), 1);
    let twice = store
        .complete_tasks(&[done(&c, t0(), Outcome::Succeeded { output: json!(3) })])
        .await
        .unwrap();
    assert_eq!(
        twice.rejected,
        vec![t.id],
        "a result is never recorded twice"
    );
    let got = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(got.output, Some(json!(2)));
    assert_eq!(got.attempts.len(), 1);
    // Duplicates inside one batch: the first wins.
    let u = new_task("echo", 0, t0());
    insert(&store, vec![u.clone()]).await;
    let c = claim(&store, WorkerId::new(), t0(), "echo", 1)
        .await
        .remove(0);
    let r = store
        .complete_tasks(&[
            done(
                &c,
                t0(),
                Outcome::Succeeded {
                    output: json!("first"),
                },
            ),
            done(
                &c,
                t0(),
                Outcome::Succeeded {
                    output: json!("second"),
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(r.transitions.len(), 1);
    assert_eq!(
        store.get_task(u.id).await.unwrap().unwrap().output,
        Some(json!("first"))
    );
}

pub async fn retry_then_claim_again(store: SharedStore) {
    let t = new_task("flaky", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let worker = WorkerId::new();
    let c = claim(&store, worker, t0(), "flaky", 1).await.remove(0);
    let error = TaskError::retryable("http_503", "upstream down");
    let retry_at = t0().plus_ms(500);
    let r = store
        .complete_tasks(&[done(
            &c,
            t0().plus_ms(1),
            Outcome::Retry {
                error: error.clone(),
                run_at: retry_at,
            },
        )])
        .await
        .unwrap();
    let tr = &r.transitions[0];
    assert_eq!((tr.status, tr.run_at), (TaskStatus::Retrying, retry_at));
    assert_eq!(tr.error.as_ref(), Some(&error));
    assert!(
        claim(&store, worker, t0().plus_ms(2), "flaky", 1)
            .await
            .is_empty(),
        "backoff is honoured"
    );
    let again = claim(&store, worker, retry_at, "flaky", 1).await.remove(0);
    assert_eq!((again.attempt, again.attempts_in_run), (2, 2));
    let got = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(got.attempts.len(), 2);
    assert_eq!(got.attempts[0].status, AttemptStatus::Failed);
    assert_eq!(got.attempts[0].error.as_ref(), Some(&error));
    assert_eq!(got.attempts[1].status, AttemptStatus::Running);

    // The second attempt succeeds: the failed one stays recorded, the succeeded one is
    // described by the task row, the same in a lookup and in a list.
    let finished = retry_at.plus_ms(7);
    store
        .complete_tasks(&[done(
            &again,
            finished,
            Outcome::Succeeded {
                output: json!("ok"),
            },
        )])
        .await
        .unwrap();
    let got = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(got.status, TaskStatus::Succeeded);
    let summary: Vec<_> = got
        .attempts
        .iter()
        .map(|a| (a.number, a.status, a.worker_id, a.started_at, a.finished_at))
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                AttemptStatus::Failed,
                Some(worker),
                t0(),
                Some(t0().plus_ms(1))
            ),
            (
                2,
                AttemptStatus::Succeeded,
                Some(worker),
                retry_at,
                Some(finished)
            ),
        ]
    );
    assert_eq!(got.attempts[1].error, None);
    let listed = store
        .list_tasks(&TaskQuery {
            agent: Some("flaky".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = listed.iter().find(|l| l.id == t.id).expect("listed");
    assert_eq!(listed.attempts, got.attempts);
}

pub async fn fallback_creates_linked_task(store: SharedStore) {
    let mut t = new_task("primary", 0, t0());
    t.owner_id = Some(UserId::new());
    insert(&store, vec![t.clone()]).await;
    let c = claim(&store, WorkerId::new(), t0(), "primary", 1)
        .await
        .remove(0);
    let mut fb = new_task("backup", 0, t0().plus_ms(3));
    fb.fallback_of = Some(t.id);
    fb.owner_id = t.owner_id;
    fb.input = t.input.clone();
    let error = TaskError::permanent("bad_request", "no");
    let r = store
        .complete_tasks(&[done(
            &c,
            t0().plus_ms(3),
            Outcome::Fallback {
                error: error.clone(),
                fallback: Box::new(fb.clone()),
            },
        )])
        .await
        .unwrap();
    assert_eq!(
        r.transitions.len(),
        2,
        "the failure and the fallback's queued event"
    );
    assert_eq!(r.transitions[0].status, TaskStatus::Failed);
    assert_eq!(r.transitions[0].fallback_task_id, Some(fb.id));
    assert_eq!(
        (r.transitions[1].task_id, r.transitions[1].status),
        (fb.id, TaskStatus::Queued)
    );
    let original = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(original.status, TaskStatus::Failed);
    assert_eq!(original.fallback_task_id, Some(fb.id));
    assert_eq!(original.error, Some(error));
    let fallback = store.get_task(fb.id).await.unwrap().unwrap();
    assert_eq!(
        (fallback.status, fallback.fallback_of, fallback.owner_id),
        (TaskStatus::Queued, Some(t.id), t.owner_id)
    );
    // A stale result never creates a fallback.
    let stale = store
        .complete_tasks(&[done(
            &c,
            t0(),
            Outcome::Fallback {
                error: TaskError::permanent("x", "y"),
                fallback: Box::new(new_task("backup", 0, t0())),
            },
        )])
        .await
        .unwrap();
    assert!(stale.transitions.is_empty());
    assert_eq!(
        claim(&store, WorkerId::new(), t0().plus_ms(10), "backup", 10)
            .await
            .len(),
        1
    );
}

pub async fn cancel_waiting_and_running(store: SharedStore) {
    let waiting = new_task("c", 0, t0());
    let running = new_task("c", 0, t0());
    insert(&store, vec![running.clone()]).await;
    let worker = WorkerId::new();
    let c = claim(&store, worker, t0(), "c", 1).await.remove(0);
    insert(&store, vec![waiting.clone()]).await;

    match store
        .cancel_task(waiting.id, t0().plus_ms(1))
        .await
        .unwrap()
    {
        CancelOutcome::Cancelled(t) => {
            assert_eq!((t.status, t.seq), (TaskStatus::Cancelled, 2));
            assert!(t.error.is_some());
        }
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert_eq!(
        store.get_task(waiting.id).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );

    let requested_at = t0().plus_ms(2);
    match store.cancel_task(running.id, requested_at).await.unwrap() {
        CancelOutcome::Requested { worker_id, attempt } => {
            assert_eq!((worker_id, attempt), (Some(worker), 1))
        }
        other => panic!("expected a cancel request, got {other:?}"),
    }
    let got = store.get_task(running.id).await.unwrap().unwrap();
    assert!(got.cancel_requested && got.status == TaskStatus::Running);
    assert!(
        store
            .overdue_cancellations(requested_at, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let overdue = store
        .overdue_cancellations(requested_at.plus_ms(1), 10)
        .await
        .unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!((overdue[0].task_id, overdue[0].attempt), (running.id, 1));
    let r = store
        .complete_tasks(&[done(
            &c,
            t0().plus_ms(3),
            Outcome::Cancelled { error: None },
        )])
        .await
        .unwrap();
    assert_eq!(r.transitions[0].status, TaskStatus::Cancelled);
    let got = store.get_task(running.id).await.unwrap().unwrap();
    assert_eq!(got.attempts[0].status, AttemptStatus::Cancelled);
    assert!(!got.cancel_requested);

    assert_eq!(
        store.cancel_task(running.id, t0()).await.unwrap(),
        CancelOutcome::AlreadyFinished(TaskStatus::Cancelled)
    );
    assert_eq!(
        store.cancel_task(TaskId::new(), t0()).await.unwrap(),
        CancelOutcome::NotFound
    );
}

pub async fn replay_dead_task(store: SharedStore) {
    let t = new_task("dies", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let worker = WorkerId::new();
    for n in 1..=2u32 {
        let c = claim(&store, worker, t0(), "dies", 1).await.remove(0);
        assert_eq!(c.attempts_in_run, n);
        let outcome = if n == 1 {
            Outcome::Retry {
                error: TaskError::retryable("x", "x"),
                run_at: t0(),
            }
        } else {
            Outcome::Dead {
                error: TaskError::retryable("x", "x"),
            }
        };
        store
            .complete_tasks(&[done(&c, t0(), outcome)])
            .await
            .unwrap();
    }
    assert_eq!(
        store.get_task(t.id).await.unwrap().unwrap().status,
        TaskStatus::Dead
    );
    let tr = store
        .replay_task(t.id, t0().plus_ms(9))
        .await
        .unwrap()
        .expect("replayed");
    assert_eq!(
        (tr.status, tr.run_at),
        (TaskStatus::Queued, t0().plus_ms(9))
    );
    let got = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.error.clone(), got.finished_at),
        (TaskStatus::Queued, None, None)
    );
    let c = claim(&store, worker, t0().plus_ms(9), "dies", 1)
        .await
        .remove(0);
    assert_eq!(
        (c.attempt, c.attempts_in_run),
        (3, 1),
        "attempt numbers continue; the budget restarts"
    );
    store
        .complete_tasks(&[done(
            &c,
            t0(),
            Outcome::Succeeded {
                output: json!(null),
            },
        )])
        .await
        .unwrap();
    let e = store.replay_task(t.id, t0()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidState);
    assert!(
        store
            .replay_task(TaskId::new(), t0())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.get_task(t.id).await.unwrap().unwrap().attempts.len(),
        3
    );
}
