//! Claims: order, schedule, concurrency limits, leases.

use super::*;

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

/// Attempts past their agent's timeout are found by when they started, per agent.
pub async fn attempts_past_their_timeout_are_found(store: SharedStore) {
    let slow = format!("slow-{}", uuid::Uuid::new_v4().simple());
    let quick = format!("quick-{}", uuid::Uuid::new_v4().simple());
    let other = format!("other-{}", uuid::Uuid::new_v4().simple());
    insert(
        &store,
        vec![
            new_task(&slow, 0, t0()),
            new_task(&quick, 0, t0()),
            new_task(&other, 0, t0()),
        ],
    )
    .await;
    let w = WorkerId::new();
    for agent in [&slow, &quick, &other] {
        assert_eq!(claim(&store, w, t0(), agent, 1).await.len(), 1);
    }
    let mut limits = std::collections::BTreeMap::new();
    // Started at t0: past a deadline of t0 + 1 ms, not of t0 itself.
    limits.insert(quick.clone(), t0().plus_ms(1));
    limits.insert(slow.clone(), t0());
    let mine = |found: Vec<AttemptRef>| {
        let mut agents: Vec<String> = found
            .into_iter()
            .map(|a| a.agent)
            .filter(|a| [&slow, &quick, &other].contains(&a))
            .collect();
        agents.sort();
        agents
    };
    let found = store.timed_out_attempts(&limits, t0(), 100).await.unwrap();
    assert_eq!(
        found.iter().find(|a| a.agent == quick).unwrap().worker_id,
        Some(w)
    );
    assert_eq!(mine(found), vec![quick.clone()]);
    // Agents the map does not name take the fallback deadline.
    let found = store
        .timed_out_attempts(&limits, t0().plus_ms(1), 100)
        .await
        .unwrap();
    let mut expected = vec![other.clone(), quick.clone()];
    expected.sort();
    assert_eq!(mine(found), expected);
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

/// A claim whose answer was lost (the connection died after its commit) is taken back:
/// its tasks are queued again as they were, for any worker to claim.
pub async fn a_lost_claim_is_released(store: SharedStore) {
    insert(&store, (0..3).map(|_| new_task("lost", 0, t0())).collect()).await;
    let (lost, other) = (WorkerId::new(), WorkerId::new());
    let claimed = claim(&store, lost, t0(), "lost", 2).await;
    assert_eq!(claimed.len(), 2);
    let kept = claim(&store, other, t0(), "lost", 1).await;
    assert_eq!(
        store.release_claim(lost, t0().plus_ms(1)).await.unwrap(),
        0,
        "another claim"
    );
    assert_eq!(store.release_claim(lost, t0()).await.unwrap(), 2);
    for c in &claimed {
        let t = store.get_task(c.id).await.unwrap().unwrap();
        assert_eq!(
            (t.status, t.attempts.len()),
            (TaskStatus::Queued, 0),
            "{t:?}"
        );
    }
    assert_eq!(
        store.get_task(kept[0].id).await.unwrap().unwrap().status,
        TaskStatus::Running,
        "another worker's claim is untouched"
    );
    let again = claim(&store, other, t0().plus_ms(5), "lost", 5).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.attempt == 1), "{again:?}");
}
