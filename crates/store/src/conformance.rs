//! The storage conformance suite: every behaviour the engine relies on, written once
//! against `&dyn Store` and run on every backend (see `tests/sqlite.rs`,
//! `tests/postgres.rs`). A backend is correct when all of these pass unchanged.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use switchyard_core::agent::{Agent, builtin_agents};
use switchyard_core::auth::{ApiKey, Role, Scope};
use switchyard_core::error::ErrorCode;
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::monitoring::*;
use switchyard_core::store::*;
use switchyard_core::task::{AttemptStatus, TaskError, TaskStatus};
use switchyard_core::{ApiKeyId, TaskId, Timestamp, UserId, WorkerId};

/// Every check, by name, for backends to generate one test each.
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:path) => {
        $crate::conformance_tests!(@each $make_store;
            insert_and_get, idempotency_keys, claim_order_priority_then_fifo, claim_respects_run_at,
            claim_respects_concurrency_limit, concurrent_claims_never_overlap, success_records_attempt,
            stale_results_are_rejected, retry_then_claim_again, fallback_creates_linked_task,
            cancel_waiting_and_running, replay_dead_task, leases_extend_and_expire, live_events_and_logs,
            list_filters_and_cursor, queue_stats_and_ready_agents, agents_crud, users_and_api_keys,
            workers_registry, settings_init_once, idempotency_keys_expire, large_batches,
            sessions_rotate_and_expire, metric_rollups_add_and_downsample, alert_rules_and_events,
            agent_report_counts_tasks, task_logs_filter_and_expire, full_text_search,
            tasks_inserted_claimed, null_outputs_stay_distinct, duplicate_ids_fail_the_whole_batch,
            large_idempotent_batches, content_keeps_nul_and_the_escape_character);
    };
    (@each $make_store:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(store) = $make_store().await else { return };
                $crate::conformance::$check(store).await;
            }
        )*
    };
}

pub type SharedStore = Arc<dyn Store>;

const LEASE_MS: u64 = 30_000;

pub fn t0() -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000)
}

pub fn new_task(agent: &str, priority: i32, at: Timestamp) -> NewTask {
    NewTask {
        id: TaskId::new(),
        agent: agent.to_owned(),
        input: json!({"n": 1, "text": "héllo"}),
        priority,
        run_at: at,
        owner_id: None,
        idempotency_key: None,
        parent_id: None,
        fallback_of: None,
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        created_at: at,
        cached_output: None,
        claim: None,
    }
}

fn claim_req(
    worker: WorkerId,
    now: Timestamp,
    demands: &[(&str, u32, Option<u32>)],
) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker,
        worker_name: "conformance".into(),
        now,
        lease_ms: LEASE_MS,
        demands: demands
            .iter()
            .map(|(agent, max, concurrency)| AgentDemand {
                agent: (*agent).to_owned(),
                max: *max,
                concurrency: *concurrency,
            })
            .collect(),
    }
}

pub async fn insert(store: &SharedStore, tasks: Vec<NewTask>) -> Vec<Submitted> {
    store
        .insert_tasks(tasks, Timestamp::EPOCH)
        .await
        .expect("insert tasks")
}

pub async fn claim(
    store: &SharedStore,
    worker: WorkerId,
    now: Timestamp,
    agent: &str,
    max: u32,
) -> Vec<ClaimedTask> {
    store
        .claim_tasks(&claim_req(worker, now, &[(agent, max, None)]))
        .await
        .expect("claim")
}

fn done(task: &ClaimedTask, at: Timestamp, outcome: Outcome) -> Completion {
    Completion {
        task_id: task.id,
        attempt: task.attempt,
        at,
        outcome,
    }
}

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

pub async fn claim_order_priority_then_fifo(store: SharedStore) {
    let low = new_task("order", 0, t0());
    let high = new_task("order", 10, t0());
    let low2 = new_task("order", 0, t0());
    let other = new_task("other-agent", 100, t0());
    insert(
        &store,
        vec![low.clone(), high.clone(), low2.clone(), other.clone()],
    )
    .await;
    let worker = WorkerId::new();
    let first = claim(&store, worker, t0(), "order", 2).await;
    assert_eq!(
        first.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![high.id, low.id]
    );
    assert!(
        first
            .iter()
            .all(|c| c.attempt == 1 && c.attempts_in_run == 1 && c.seq == 2)
    );
    assert_eq!(first[0].input, high.input);
    let rest = claim(&store, worker, t0(), "order", 10).await;
    assert_eq!(
        rest.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![low2.id],
        "other agents are untouched"
    );
    assert!(claim(&store, worker, t0(), "order", 10).await.is_empty());
    let running = store.get_task(high.id).await.unwrap().unwrap();
    assert_eq!(running.status, TaskStatus::Running);
    assert_eq!(running.attempts.len(), 1);
    assert_eq!(running.attempts[0].status, AttemptStatus::Running);
    assert_eq!(running.attempts[0].worker_id, Some(worker));
    assert_eq!(running.started_at, Some(t0()));
}

pub async fn claim_respects_run_at(store: SharedStore) {
    let later = t0().plus_ms(60_000);
    let mut delayed = new_task("delayed", 0, t0());
    delayed.run_at = later;
    insert(&store, vec![delayed.clone()]).await;
    assert!(
        claim(&store, WorkerId::new(), t0(), "delayed", 5)
            .await
            .is_empty()
    );
    assert_eq!(store.next_run_at(t0()).await.unwrap(), Some(later));
    assert!(store.ready_agents(t0()).await.unwrap().is_empty());
    let claimed = claim(&store, WorkerId::new(), later, "delayed", 5).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.next_run_at(later).await.unwrap(), None);
}

pub async fn claim_respects_concurrency_limit(store: SharedStore) {
    let tasks: Vec<NewTask> = (0..5).map(|_| new_task("limited", 0, t0())).collect();
    insert(&store, tasks).await;
    let req = |w| claim_req(w, t0(), &[("limited", 10, Some(2))]);
    let a = store.claim_tasks(&req(WorkerId::new())).await.unwrap();
    assert_eq!(a.len(), 2, "never more than the concurrency limit");
    let b = store.claim_tasks(&req(WorkerId::new())).await.unwrap();
    assert!(b.is_empty(), "the limit holds across workers");
    store
        .complete_tasks(&[done(&a[0], t0(), Outcome::Succeeded { output: json!(1) })])
        .await
        .unwrap();
    let c = store.claim_tasks(&req(WorkerId::new())).await.unwrap();
    assert_eq!(c.len(), 1, "a finished task frees one slot");
}

pub async fn concurrent_claims_never_overlap(store: SharedStore) {
    let n = 400;
    let tasks: Vec<NewTask> = (0..n).map(|_| new_task("contended", 0, t0())).collect();
    insert(&store, tasks).await;
    let mut handles = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let worker = WorkerId::new();
            let mut mine = Vec::new();
            loop {
                let got = claim(&store, worker, t0(), "contended", 17).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), n, "every task claimed");
    assert_eq!(unique.len(), n, "no task claimed twice");
}

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

pub async fn leases_extend_and_expire(store: SharedStore) {
    let a = new_task("leased", 0, t0());
    let b = new_task("leased", 0, t0());
    insert(&store, vec![a.clone(), b.clone()]).await;
    let w1 = WorkerId::new();
    let w2 = WorkerId::new();
    claim(&store, w1, t0(), "leased", 1).await;
    claim(&store, w2, t0(), "leased", 1).await;
    let expiry = t0().plus_ms(LEASE_MS);
    assert!(store.expired_leases(expiry, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .extend_leases(w1, expiry.plus_ms(60_000))
            .await
            .unwrap(),
        1
    );
    let expired = store.expired_leases(expiry.plus_ms(1), 10).await.unwrap();
    assert_eq!(
        expired.len(),
        1,
        "only the lease that was not extended expired"
    );
    assert_eq!(expired[0].worker_id, Some(w2));
    assert_eq!(store.running_tasks(Some(w1), 10).await.unwrap().len(), 1);
    assert_eq!(store.running_tasks(None, 10).await.unwrap().len(), 2);
    assert!(
        store
            .running_tasks(Some(WorkerId::new()), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A task inserted with a [`DirectClaim`] is running under that lease at once: it is
/// never claimable, its result completes it like any claim's, and its lease expires
/// like any other.
pub async fn tasks_inserted_claimed(store: SharedStore) {
    let worker = WorkerId::new();
    let lease = DirectClaim {
        worker_id: worker,
        worker_name: "direct".into(),
        lease_expires_at: t0().plus_ms(LEASE_MS),
    };
    let mut a = new_task("direct", 0, t0());
    a.claim = Some(lease.clone());
    let mut b = new_task("direct", 0, t0());
    b.claim = Some(lease);
    let queued = new_task("direct", 0, t0());
    let out = insert(&store, vec![a.clone(), b.clone(), queued.clone()]).await;
    let Submitted::Created(inserted) = &out[0] else {
        panic!("not created: {out:?}")
    };
    assert_eq!(inserted.status, TaskStatus::Running);
    assert_eq!(inserted.seq, 2, "queued and running");
    let got = store.get_task(a.id).await.unwrap().unwrap();
    assert_eq!(got.status, TaskStatus::Running);
    assert_eq!(got.seq, 2);
    assert_eq!(got.started_at, Some(t0()));
    assert_eq!(got.attempts.len(), 1);
    assert_eq!(got.attempts[0].number, 1);
    assert_eq!(got.attempts[0].status, AttemptStatus::Running);
    assert_eq!(got.attempts[0].worker_id, Some(worker));
    assert_eq!(got.attempts[0].worker.as_deref(), Some("direct"));
    assert_eq!(
        inserted.attempts, got.attempts,
        "the insert answers what a read shows"
    );

    let claimed = claim(&store, WorkerId::new(), t0(), "direct", 10).await;
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![queued.id],
        "only the queued task is claimable"
    );
    assert_eq!(
        store.running_tasks(Some(worker), 10).await.unwrap().len(),
        2
    );

    let r = store
        .complete_tasks(&[Completion {
            task_id: a.id,
            attempt: 1,
            at: t0().plus_ms(5),
            outcome: Outcome::Succeeded {
                output: json!({"ok": true}),
            },
        }])
        .await
        .unwrap();
    assert!(r.rejected.is_empty());
    assert_eq!(r.transitions[0].seq, 3);
    let done = store.get_task(a.id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"ok": true})));
    assert_eq!(done.attempts.len(), 1);
    assert_eq!(done.attempts[0].status, AttemptStatus::Succeeded);
    assert_eq!(done.attempts[0].worker_id, Some(worker));
    assert_eq!(done.attempts[0].started_at, t0());

    let expired = store
        .expired_leases(t0().plus_ms(LEASE_MS + 1), 10)
        .await
        .unwrap();
    let mine: Vec<_> = expired
        .iter()
        .filter(|l| l.worker_id == Some(worker))
        .map(|l| (l.task_id, l.attempt))
        .collect();
    assert_eq!(
        mine,
        vec![(b.id, 1)],
        "the unfinished direct claim's lease expires"
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
        .record_events(vec![EventDraft {
            task_id: claimed[0].id,
            attempt: claimed[0].attempt,
            at: t0(),
            body: EventBody::Log {
                level: LogLevel::Warn,
                message: line.into(),
            },
        }])
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

pub async fn live_events_and_logs(store: SharedStore) {
    let t = new_task("logger", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let c = claim(&store, WorkerId::new(), t0(), "logger", 1)
        .await
        .remove(0);
    let draft = |body: EventBody, attempt: u32| EventDraft {
        task_id: t.id,
        attempt,
        at: t0(),
        body,
    };
    let log = |m: &str| EventBody::Log {
        level: LogLevel::Info,
        message: m.into(),
    };
    let recorded = store
        .record_events(vec![
            draft(log("one"), c.attempt),
            draft(
                EventBody::Progress {
                    progress: Some(0.5),
                    message: None,
                },
                c.attempt,
            ),
            draft(log("two"), c.attempt),
            draft(log("stale"), c.attempt + 7),
        ])
        .await
        .unwrap();
    let seqs: Vec<Option<u64>> = recorded.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        vec![Some(3), Some(4), Some(5), None],
        "gap-free after the running event (2)"
    );
    assert_eq!(recorded[0].agent, "logger");
    let logs = store.task_logs(t.id, 0, 100).await.unwrap();
    assert_eq!(
        logs.iter()
            .map(|l| (l.seq, l.message.as_str()))
            .collect::<Vec<_>>(),
        vec![(3, "one"), (5, "two")]
    );
    assert_eq!(store.task_logs(t.id, 3, 100).await.unwrap().len(), 1);
    let r = store
        .complete_tasks(&[done(&c, t0(), Outcome::Succeeded { output: json!(1) })])
        .await
        .unwrap();
    assert_eq!(
        r.transitions[0].seq, 6,
        "the final event follows the live ones"
    );
    let late = store
        .record_events(vec![draft(log("late"), c.attempt)])
        .await
        .unwrap();
    assert_eq!(late[0].seq, None, "no events after the attempt ended");
}

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

pub async fn users_and_api_keys(store: SharedStore) {
    let user = NewUser {
        id: UserId::new(),
        email: "ops@example.com".into(),
        password_hash: "$argon2id$fake".into(),
        role: Role::Operator,
        created_at: t0(),
    };
    let created = store.create_user(user.clone()).await.unwrap();
    assert_eq!(
        (created.email.as_str(), created.role, created.disabled),
        ("ops@example.com", Role::Operator, false)
    );
    let dup = store
        .create_user(NewUser {
            id: UserId::new(),
            ..user.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::EmailTaken);
    let (found, hash) = store
        .user_by_email("ops@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (user.id, "$argon2id$fake"));
    assert_eq!(store.count_users().await.unwrap(), 1);
    let patched = store
        .update_user(
            user.id,
            UserPatch {
                role: Some(Role::Admin),
                disabled: Some(true),
                password_hash: None,
            },
            t0().plus_ms(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((patched.role, patched.disabled), (Role::Admin, true));
    assert_eq!(
        store
            .user_by_email("ops@example.com")
            .await
            .unwrap()
            .unwrap()
            .1,
        "$argon2id$fake"
    );
    assert!(
        store
            .update_user(UserId::new(), UserPatch::default(), t0())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);

    let key = ApiKey {
        id: ApiKeyId::new(),
        user_id: user.id,
        name: "ci".into(),
        prefix: "sy_abcd".into(),
        scopes: vec![Scope::Submit, Scope::Read],
        created_at: t0(),
        expires_at: Some(t0().plus_ms(1_000)),
        revoked_at: None,
        last_used_at: None,
    };
    store
        .create_api_key(NewApiKey {
            key: key.clone(),
            secret_hash: "h1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.api_key_by_hash("h1").await.unwrap(),
        Some(key.clone())
    );
    assert!(store.api_key_by_hash("h2").await.unwrap().is_none());
    store.touch_api_key(key.id, t0().plus_ms(5)).await.unwrap();
    assert_eq!(
        store.list_api_keys(Some(user.id)).await.unwrap()[0].last_used_at,
        Some(t0().plus_ms(5))
    );
    assert!(
        store
            .list_api_keys(Some(UserId::new()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .revoke_api_key(key.id, Some(UserId::new()), t0())
            .await
            .unwrap(),
        "not someone else's key"
    );
    assert!(
        store
            .revoke_api_key(key.id, Some(user.id), t0().plus_ms(7))
            .await
            .unwrap()
    );
    assert!(
        !store.revoke_api_key(key.id, None, t0()).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        store
            .api_key_by_hash("h1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(t0().plus_ms(7))
    );
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

pub async fn sessions_rotate_and_expire(store: SharedStore) {
    use switchyard_core::SessionId;
    use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
    let rotation =
        |presented: &'static str, new: &'static str, at: Timestamp, grace_ms: u64| Rotation {
            presented_hash: presented,
            new_hash: new,
            sealed_next: new,
            new_expiry: at.plus_ms(120_000),
            now: at,
            grace_ms,
        };
    let now = Timestamp::now();
    let user = UserId::new();
    let session = |created: Timestamp| Session {
        id: SessionId::new(),
        user_id: user,
        created_at: created,
        expires_at: now.plus_ms(60_000),
        last_refreshed_at: created,
        user_agent: Some("conformance".into()),
        ip: None,
        refresh_hash: "h0".into(),
        used_hashes: vec![],
        sealed_next: String::new(),
    };
    let a = session(now.minus_ms(10));
    let b = session(now);
    store.put_session(&a).await.unwrap();
    store.put_session(&b).await.unwrap();
    store.put_session(&a).await.expect("putting again replaces");
    assert_eq!(store.get_session(a.id, now).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.list_sessions(user, now).await.unwrap(),
        vec![a.clone(), b.clone()],
        "oldest first"
    );
    assert_eq!(
        store.get_session(a.id, now.plus_ms(60_000)).await.unwrap(),
        None,
        "expired"
    );

    let later = now.plus_ms(120_000);
    match store
        .rotate_refresh(a.id, &rotation("h0", "h1", now, 0))
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated(r) => {
            assert_eq!((r.refresh_hash.as_str(), r.expires_at), ("h1", later));
            assert_eq!(r.used_hashes, vec!["h0".to_owned()]);
            assert_eq!(store.get_session(a.id, now).await.unwrap(), Some(r));
        }
        other => panic!("expected rotation, got {other:?}"),
    }
    assert_eq!(
        store
            .rotate_refresh(a.id, &rotation("never-issued", "hx", now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(
        store.get_session(a.id, now).await.unwrap().is_some(),
        "a bad guess does not revoke"
    );
    assert_eq!(
        store
            .rotate_refresh(a.id, &rotation("h0", "h2", now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Reused
    );
    assert_eq!(
        store.get_session(a.id, now).await.unwrap(),
        None,
        "reuse revokes the session"
    );
    assert_eq!(
        store
            .rotate_refresh(SessionId::new(), &rotation("h0", "h1", now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );

    // Concurrent rotations with the same token: exactly one wins; within the grace
    // window the others get the winner's (sealed) token and the session lives.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let id = b.id;
        handles.push(tokio::spawn(async move {
            let new = format!("n{i}");
            let r = Rotation {
                presented_hash: "h0",
                new_hash: &new,
                sealed_next: &new,
                new_expiry: later,
                now,
                grace_ms: 30_000,
            };
            store.rotate_refresh(id, &r).await.unwrap()
        }));
    }
    let (mut rotated, mut repeated) = (Vec::new(), Vec::new());
    for h in handles {
        match h.await.unwrap() {
            RefreshOutcome::Rotated(s) => rotated.push(s),
            RefreshOutcome::Repeated(s) => repeated.push(s),
            other => panic!("within the grace window: {other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "one rotation per token");
    assert_eq!(repeated.len(), 7);
    let winner = &rotated[0].refresh_hash;
    assert!(
        repeated
            .iter()
            .all(|s| &s.refresh_hash == winner && &s.sealed_next == winner),
        "repeats get the winner's token"
    );
    assert_eq!(
        store
            .get_session(b.id, now)
            .await
            .unwrap()
            .map(|s| s.refresh_hash),
        Some(winner.clone()),
        "the session lives on the winner's token"
    );
    // The same token again after the window, or a token two rotations old, is reuse.
    let c = session(now);
    store.put_session(&c).await.unwrap();
    let r = store
        .rotate_refresh(c.id, &rotation("h0", "h1", now, 10_000))
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated(_)), "{r:?}");
    let r = store
        .rotate_refresh(c.id, &rotation("h0", "hx", now.plus_ms(9_000), 10_000))
        .await
        .unwrap();
    assert!(
        matches!(&r, RefreshOutcome::Repeated(s) if s.refresh_hash == "h1" && s.sealed_next == "h1"),
        "{r:?}"
    );
    let r = store
        .rotate_refresh(c.id, &rotation("h1", "h2", now.plus_ms(9_500), 10_000))
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated(_)), "{r:?}");
    assert_eq!(
        store
            .rotate_refresh(c.id, &rotation("h0", "hx", now.plus_ms(9_600), 10_000))
            .await
            .unwrap(),
        RefreshOutcome::Reused,
        "two rotations old"
    );
    assert_eq!(store.get_session(c.id, now).await.unwrap(), None);
    let d = session(now);
    store.put_session(&d).await.unwrap();
    let r = store
        .rotate_refresh(d.id, &rotation("h0", "h1", now, 10_000))
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated(_)), "{r:?}");
    assert_eq!(
        store
            .rotate_refresh(d.id, &rotation("h0", "hx", now.plus_ms(10_000), 10_000))
            .await
            .unwrap(),
        RefreshOutcome::Reused,
        "after the window"
    );
    assert_eq!(store.get_session(d.id, now).await.unwrap(), None);

    assert!(
        store.delete_session(b.id).await.unwrap()
            || store.get_session(b.id, now).await.unwrap().is_none()
    );
    assert!(!store.delete_session(b.id).await.unwrap());
    let mut stale = session(now.minus_ms(100_000));
    stale.expires_at = now.minus_ms(1);
    store.put_session(&stale).await.unwrap();
    assert_eq!(store.prune_sessions(now).await.unwrap(), 1);
    assert_eq!(
        store
            .list_sessions(user, now.minus_ms(50_000))
            .await
            .unwrap(),
        vec![]
    );
}

fn point(metric: &str, agent: &str, bucket: i32, value: f64) -> MetricPoint {
    MetricPoint {
        metric: metric.into(),
        agent: agent.into(),
        bucket,
        value,
    }
}

pub async fn metric_rollups_add_and_downsample(store: SharedStore) {
    use switchyard_core::monitoring::series;
    let hour = Timestamp::from_millis(1_800_000_000_000 / HOUR_MS * HOUR_MS);
    let m1 = hour.plus_ms(60_000);
    let m2 = hour.plus_ms(120_000);
    // Two processes add their deltas to the same minute: the row holds the sum.
    for _ in 0..2 {
        store
            .add_metric_points(
                m1,
                &[
                    point(series::TASKS_SUBMITTED, "echo", -1, 3.0),
                    point(series::LATENCY_E2E, "echo", 2, 5.0),
                ],
            )
            .await
            .unwrap();
    }
    store
        .add_metric_points(m2, &[point(series::TASKS_SUBMITTED, "echo", -1, 4.0)])
        .await
        .unwrap();
    // Gauges: the latest sample of a minute wins.
    store
        .set_metric_gauges(m1, &[point(series::QUEUE_READY, "echo", -1, 7.0)])
        .await
        .unwrap();
    store
        .set_metric_gauges(m1, &[point(series::QUEUE_READY, "echo", -1, 2.0)])
        .await
        .unwrap();
    store
        .set_metric_gauges(m2, &[point(series::QUEUE_READY, "echo", -1, 5.0)])
        .await
        .unwrap();
    let query = |resolution_s, agent: Option<&str>| MetricRowQuery {
        metrics: vec![
            series::TASKS_SUBMITTED.into(),
            series::LATENCY_E2E.into(),
            series::QUEUE_READY.into(),
        ],
        agent: agent.map(str::to_owned),
        from: hour,
        to: hour.plus_ms(HOUR_MS as u64),
        resolution_s,
    };
    let rows = store.metric_rows(&query(60, Some("echo"))).await.unwrap();
    let value = |rows: &[MetricRow], metric: &str, at: Timestamp, bucket: i32| {
        rows.iter()
            .find(|r| r.metric == metric && r.bucket_start == at && r.bucket == bucket)
            .map(|r| r.value)
    };
    assert_eq!(value(&rows, series::TASKS_SUBMITTED, m1, -1), Some(6.0));
    assert_eq!(value(&rows, series::TASKS_SUBMITTED, m2, -1), Some(4.0));
    assert_eq!(value(&rows, series::LATENCY_E2E, m1, 2), Some(10.0));
    assert_eq!(value(&rows, series::QUEUE_READY, m1, -1), Some(2.0));
    assert!(
        rows.windows(2)
            .all(|w| w[0].bucket_start <= w[1].bucket_start)
    );
    assert!(
        store
            .metric_rows(&query(60, Some("other")))
            .await
            .unwrap()
            .is_empty()
    );
    // Downsampling folds the minutes into their hour: sums, and maxima for gauges.
    let folded = store
        .downsample_metrics(hour.plus_ms(HOUR_MS as u64))
        .await
        .unwrap();
    assert_eq!(folded, 5);
    assert!(
        store
            .metric_rows(&query(60, None))
            .await
            .unwrap()
            .is_empty()
    );
    let hours = store.metric_rows(&query(3600, None)).await.unwrap();
    assert_eq!(value(&hours, series::TASKS_SUBMITTED, hour, -1), Some(10.0));
    assert_eq!(value(&hours, series::LATENCY_E2E, hour, 2), Some(10.0));
    assert_eq!(value(&hours, series::QUEUE_READY, hour, -1), Some(5.0));
    // Folding more minutes of the same hour later adds to the hour.
    store
        .add_metric_points(m2, &[point(series::TASKS_SUBMITTED, "echo", -1, 1.0)])
        .await
        .unwrap();
    store
        .downsample_metrics(hour.plus_ms(HOUR_MS as u64))
        .await
        .unwrap();
    let hours = store.metric_rows(&query(3600, None)).await.unwrap();
    assert_eq!(value(&hours, series::TASKS_SUBMITTED, hour, -1), Some(11.0));
    assert_eq!(store.prune_metrics(3600, hour.plus_ms(1)).await.unwrap(), 3);
    assert!(
        store
            .metric_rows(&query(3600, None))
            .await
            .unwrap()
            .is_empty()
    );
}

fn alert_rule(name: &str) -> AlertRule {
    AlertRule {
        id: uuid::Uuid::now_v7(),
        spec: AlertRuleSpec {
            name: name.into(),
            kind: AlertKind::FailureRate,
            agent: Some("fail".into()),
            threshold: 0.5,
            window_s: 300,
            for_s: 0,
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
        },
        state: AlertState::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

fn alert_event(rule: &AlertRule, state: AlertEventState, at: Timestamp) -> AlertEvent {
    AlertEvent {
        id: uuid::Uuid::now_v7(),
        rule_id: rule.id,
        rule_name: rule.spec.name.clone(),
        kind: rule.spec.kind,
        agent: rule.spec.agent.clone(),
        state,
        value: 0.75,
        threshold: rule.spec.threshold,
        at,
        message: "failure rate 75%".into(),
        webhook_url: rule.spec.webhook_url.clone(),
        notify_status: NotifyStatus::Pending,
        notify_attempts: 0,
        next_notify_at: Some(at),
        notify_error: None,
    }
}

pub async fn alert_rules_and_events(store: SharedStore) {
    let mut a = alert_rule("a");
    let b = alert_rule("b");
    store.put_alert_rule(&a).await.unwrap();
    store.put_alert_rule(&b).await.unwrap();
    assert_eq!(store.get_alert_rule(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.list_alert_rules().await.unwrap().len(), 2);
    let state = AlertState {
        status: AlertStatus::Firing,
        since: Some(t0()),
        value: Some(0.75),
        evaluated_at: Some(t0()),
    };
    store.save_alert_state(a.id, &state).await.unwrap();
    a.spec.threshold = 0.25;
    a.updated_at = t0().plus_ms(5);
    a.state = state.clone();
    store.put_alert_rule(&a).await.unwrap();
    let got = store.get_alert_rule(a.id).await.unwrap().unwrap();
    assert_eq!(got.spec.threshold, 0.25);
    assert_eq!(got.state, state);
    assert!(store.delete_alert_rule(b.id).await.unwrap());
    assert!(!store.delete_alert_rule(b.id).await.unwrap());
    assert_eq!(store.get_alert_rule(b.id).await.unwrap(), None);

    let fired = alert_event(&a, AlertEventState::Firing, t0());
    let mut resolved = alert_event(&a, AlertEventState::Resolved, t0().plus_ms(1_000));
    resolved.notify_status = NotifyStatus::None;
    resolved.next_notify_at = None;
    resolved.webhook_url = None;
    let other = alert_event(&b, AlertEventState::Firing, t0().plus_ms(2_000));
    for e in [&fired, &resolved, &other] {
        store.insert_alert_event(e).await.unwrap();
    }
    let all = store
        .list_alert_events(&AlertEventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![other.id, resolved.id, fired.id],
        "newest first"
    );
    assert_eq!(all[2], fired, "round trip");
    let of_a = store
        .list_alert_events(&AlertEventQuery {
            rule_id: Some(a.id),
            before_id: Some(resolved.id),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![fired.id]
    );

    // The outbox: due notifications, retried later, then sent.
    let due = store.due_notifications(t0(), 10).await.unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![fired.id]);
    assert_eq!(
        due[0].webhook_url.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
    store
        .record_notification(&NotifyUpdate {
            event_id: fired.id,
            status: NotifyStatus::Pending,
            attempts: 1,
            next_at: Some(t0().plus_ms(500)),
            error: Some("HTTP 500".into()),
        })
        .await
        .unwrap();
    assert!(store.due_notifications(t0(), 10).await.unwrap().is_empty());
    let later = store
        .due_notifications(t0().plus_ms(2_000), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].notify_attempts, 1);
    assert_eq!(later[0].notify_error.as_deref(), Some("HTTP 500"));
    store
        .record_notification(&NotifyUpdate {
            event_id: fired.id,
            status: NotifyStatus::Sent,
            attempts: 2,
            next_at: None,
            error: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .due_notifications(t0().plus_ms(2_000), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Retention keeps undelivered notifications.
    assert_eq!(
        store.prune_alert_events(t0().plus_ms(3_000)).await.unwrap(),
        2
    );
    let left = store
        .list_alert_events(&AlertEventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![other.id]
    );
}

pub async fn agent_report_counts_tasks(store: SharedStore) {
    let now = Timestamp::now();
    let from = now.minus_ms(60_000);
    let worker = WorkerId::new();
    let agent = format!("report-{}", uuid::Uuid::new_v4().simple());
    let fallback_agent = format!("{agent}-fb");
    let fresh = |delay: u64| {
        let mut t = new_task(&agent, 0, now);
        t.created_at = now.minus_ms(delay);
        t.run_at = t.created_at;
        t
    };
    // Three succeed (one after a retry), one is dead, one falls back, one is cached,
    // one is still queued.
    let mut batch: Vec<NewTask> = (0..5).map(|_| fresh(0)).collect();
    let mut cached = fresh(0);
    cached.cached_output = Some(json!("hit"));
    batch.push(cached);
    batch.push(fresh(0));
    insert(&store, batch).await;
    let at = |ms: u64| now.plus_ms(ms);
    let claimed = claim(&store, worker, now, &agent, 5).await;
    assert_eq!(claimed.len(), 5);
    let err = TaskError::retryable("x", "boom");
    let retried = store
        .complete_tasks(&[done(
            &claimed[0],
            at(3),
            Outcome::Retry {
                error: err.clone(),
                run_at: now,
            },
        )])
        .await
        .unwrap();
    assert_eq!(retried.transitions.len(), 1);
    let again = claim(&store, worker, now, &agent, 1).await;
    assert_eq!(again.len(), 1);
    let mut fallback = new_task(&fallback_agent, 0, now);
    fallback.fallback_of = Some(claimed[4].id);
    store
        .complete_tasks(&[
            done(&again[0], at(40), Outcome::Succeeded { output: json!(1) }),
            done(&claimed[1], at(40), Outcome::Succeeded { output: json!(1) }),
            done(
                &claimed[2],
                at(2_000),
                Outcome::Succeeded { output: json!(1) },
            ),
            done(&claimed[3], at(40), Outcome::Dead { error: err.clone() }),
            done(
                &claimed[4],
                at(40),
                Outcome::Fallback {
                    error: err.clone(),
                    fallback: Box::new(fallback),
                },
            ),
        ])
        .await
        .unwrap();
    let report = store.agent_report(from, now.plus_ms(60_000)).await.unwrap();
    let row = report
        .iter()
        .find(|r| r.agent == agent)
        .expect("the agent is in the report");
    assert_eq!(
        (
            row.tasks,
            row.succeeded,
            row.failed,
            row.dead,
            row.cancelled
        ),
        (7, 4, 1, 1, 0)
    );
    assert_eq!((row.retries, row.fallbacks, row.cached), (1, 1, 1));
    let mut expected = vec![0u64; HISTOGRAM_BUCKETS];
    expected[latency_bucket(0)] += 1; // cached
    expected[latency_bucket(40)] += 4;
    expected[latency_bucket(2_000)] += 1;
    assert_eq!(
        row.latency_buckets, expected,
        "the queued task has no latency"
    );
    let fb = report.iter().find(|r| r.agent == fallback_agent).unwrap();
    assert_eq!(fb.tasks, 1);
    assert!(
        store
            .agent_report(now.plus_ms(60_000), now.plus_ms(120_000))
            .await
            .unwrap()
            .iter()
            .all(|r| r.agent != agent),
        "tasks outside the period are not counted"
    );
}

pub async fn task_logs_filter_and_expire(store: SharedStore) {
    let t = new_task("logfilter", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let c = claim(&store, WorkerId::new(), t0(), "logfilter", 1)
        .await
        .remove(0);
    let line = |level, m: &str| EventDraft {
        task_id: t.id,
        attempt: c.attempt,
        at: t0(),
        body: EventBody::Log {
            level,
            message: m.into(),
        },
    };
    store
        .record_events(vec![
            line(LogLevel::Debug, "connecting to db"),
            line(LogLevel::Info, "Fetched 50% of rows_x"),
            line(LogLevel::Warn, "slow DB answer"),
            line(LogLevel::Error, "db gone"),
        ])
        .await
        .unwrap();
    let q = |f: &dyn Fn(&mut LogQuery)| {
        let mut q = LogQuery {
            task_id: t.id,
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let messages =
        |lines: Vec<TaskLogLine>| lines.into_iter().map(|l| l.message).collect::<Vec<_>>();
    assert_eq!(store.query_task_logs(&q(&|_| {})).await.unwrap().len(), 4);
    assert_eq!(
        messages(
            store
                .query_task_logs(&q(&|q| q.min_level = Some(LogLevel::Warn)))
                .await
                .unwrap()
        ),
        vec!["slow DB answer", "db gone"]
    );
    assert_eq!(
        messages(
            store
                .query_task_logs(&q(&|q| q.contains = Some("DB".into())))
                .await
                .unwrap()
        ),
        vec!["connecting to db", "slow DB answer", "db gone"],
        "case-insensitive"
    );
    for literal in ["50%", "_"] {
        assert_eq!(
            messages(
                store
                    .query_task_logs(&q(&|q| q.contains = Some(literal.into())))
                    .await
                    .unwrap()
            ),
            vec!["Fetched 50% of rows_x"],
            "wildcards are literal"
        );
    }
    // Retention: logs of tasks created before the cutoff go.
    assert_eq!(
        store
            .prune_task_logs(Timestamp::now().minus_ms(3_600_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .prune_task_logs(Timestamp::now().plus_ms(1_000))
            .await
            .unwrap(),
        4
    );
    assert!(store.query_task_logs(&q(&|_| {})).await.unwrap().is_empty());
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
        .record_events(vec![EventDraft {
            task_id: a.id,
            attempt: ca.attempt,
            at: t0(),
            body: EventBody::Log {
                level: LogLevel::Info,
                message: "contacted the weatherstation".into(),
            },
        }])
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
