//! Flow control: turns between keys, per-key concurrency, rate limiters, schedules.

use switchyard_core::schedule::{Catchup, Overlap, Schedule, ScheduleSpec};

use super::*;

fn keyed(agent: &str, key: &str, priority: i32) -> NewTask {
    NewTask {
        flow_key: Some(key.to_owned()),
        ..new_task(agent, priority, t0())
    }
}

fn demand(agent: &str, max: u32) -> AgentDemand {
    AgentDemand {
        agent: agent.to_owned(),
        max,
        ..AgentDemand::default()
    }
}

async fn claim_with(store: &SharedStore, d: AgentDemand) -> Vec<ClaimedTask> {
    store
        .claim_tasks(&ClaimRequest {
            worker_id: WorkerId::new(),
            worker_name: "flow".into(),
            now: t0(),
            lease_ms: LEASE_MS,
            demands: vec![d],
        })
        .await
        .expect("claim")
}

fn count_of(claimed: &[ClaimedTask], fair: &str) -> usize {
    claimed.iter().filter(|c| c.fair_key == fair).count()
}

/// A key with a long backlog does not hold up another key's task: with 100,000 tasks of
/// one key queued, the claim that follows another key's submission takes it.
pub async fn keys_take_turns(store: SharedStore) {
    for _ in 0..10 {
        let backlog: Vec<NewTask> = (0..10_000).map(|_| keyed("turns", "a", 0)).collect();
        insert(&store, backlog).await;
    }
    let late = keyed("turns", "b", 0);
    insert(&store, vec![late.clone()]).await;
    let started = std::time::Instant::now();
    let first = claim_with(&store, demand("turns", 4)).await;
    eprintln!(
        "{}: a claim behind 100,000 tasks of one key took {:?}",
        store.backend(),
        started.elapsed()
    );
    assert_eq!(first.len(), 4);
    assert!(
        first.iter().any(|c| c.id == late.id),
        "b's task waits behind a's backlog"
    );
    assert_eq!(count_of(&first, "k:a"), 3, "what b cannot use goes to a");
    // Three keys, a claim of three: one each.
    insert(&store, (0..5).map(|_| keyed("turns", "c", 0)).collect()).await;
    insert(&store, (0..5).map(|_| keyed("turns", "b", 0)).collect()).await;
    let second = claim_with(&store, demand("turns", 3)).await;
    for key in ["k:a", "k:b", "k:c"] {
        assert_eq!(count_of(&second, key), 1, "{key} in {second:?}");
    }
    // More keys than the claim takes: turns go on after where the last claim ended.
    let next = claim_with(
        &store,
        AgentDemand {
            after: Some("k:b".into()),
            ..demand("turns", 1)
        },
    )
    .await;
    assert_eq!(next[0].fair_key, "k:c");
    let wrapped = claim_with(
        &store,
        AgentDemand {
            after: Some("k:c".into()),
            ..demand("turns", 2)
        },
    )
    .await;
    assert_eq!(count_of(&wrapped, "k:a") + count_of(&wrapped, "k:b"), 2);
    // Tasks without a key take turns by owner.
    let (u1, u2) = (UserId::new(), UserId::new());
    let owned = |u| NewTask {
        owner_id: Some(u),
        ..new_task("owners", 0, t0())
    };
    insert(&store, (0..50).map(|_| owned(u1)).collect()).await;
    insert(&store, vec![owned(u2)]).await;
    let mixed = claim_with(&store, demand("owners", 2)).await;
    assert_eq!(
        mixed.iter().filter(|c| c.owner_id == Some(u2)).count(),
        1,
        "the second user's task gets a turn"
    );
}

/// Priority comes before turns: a higher level is claimed first, then the next one.
pub async fn priority_comes_before_turns(store: SharedStore) {
    insert(&store, (0..3).map(|_| keyed("levels", "low", 0)).collect()).await;
    insert(&store, (0..2).map(|_| keyed("levels", "high", 5)).collect()).await;
    let got = claim_with(&store, demand("levels", 3)).await;
    assert_eq!(count_of(&got, "k:high"), 2);
    assert_eq!(
        count_of(&got, "k:low"),
        1,
        "the rest from the next level down"
    );
    assert_eq!(got[0].priority, 5);
}

/// `concurrency_per_key`: a key at its limit waits while other keys run, across
/// claimers, until one of its tasks finishes.
pub async fn per_key_limits_hold_without_blocking_other_keys(store: SharedStore) {
    insert(
        &store,
        (0..10).map(|_| keyed("perkey", "busy", 0)).collect(),
    )
    .await;
    insert(
        &store,
        (0..10).map(|_| keyed("perkey", "calm", 0)).collect(),
    )
    .await;
    let limited = |max| AgentDemand {
        per_key: Some(2),
        ..demand("perkey", max)
    };
    let first = claim_with(&store, limited(10)).await;
    assert_eq!(
        (count_of(&first, "k:busy"), count_of(&first, "k:calm")),
        (2, 2)
    );
    assert!(
        claim_with(&store, limited(10)).await.is_empty(),
        "both keys at their limit"
    );
    // Keys at their limit do not use up a claim: a new key behind them still runs.
    insert(&store, vec![keyed("perkey", "zz-new", 0)]).await;
    let behind = claim_with(&store, limited(1)).await;
    assert_eq!(count_of(&behind, "k:zz-new"), 1, "{behind:?}");
    let busy = first.iter().find(|c| c.fair_key == "k:busy").unwrap();
    store
        .complete_tasks(&[done(busy, t0(), Outcome::Succeeded { output: json!(1) })])
        .await
        .unwrap();
    let again = claim_with(&store, limited(10)).await;
    assert_eq!((again.len(), again[0].fair_key.as_str()), (1, "k:busy"));
    // Tasks without a key are not limited per key.
    insert(
        &store,
        (0..5).map(|_| new_task("perkey", 0, t0())).collect(),
    )
    .await;
    assert_eq!(claim_with(&store, limited(10)).await.len(), 5);
    // The caller's per-key caps (rate-limited starts) hold too.
    insert(&store, (0..5).map(|_| keyed("capped", "x", 0)).collect()).await;
    let capped = claim_with(
        &store,
        AgentDemand {
            keys: Some(vec![KeyQuota {
                fair_key: "k:x".into(),
                priority: 0,
                max: 2,
            }]),
            ..demand("capped", 10)
        },
    )
    .await;
    assert_eq!(capped.len(), 2);
    let keys = store
        .runnable_keys("perkey", t0(), None, 10, true)
        .await
        .unwrap();
    let busy_key = keys.iter().find(|k| k.fair_key == "k:busy").unwrap();
    assert_eq!(busy_key.running, 2);
}

/// The database rate limiter (the checks every limiter passes).
pub async fn rate_limits_space_starts(store: SharedStore) {
    switchyard_core::flow::conformance::rate_limiter_spaces_starts(
        store.as_ref(),
        "rate:conformance",
        t0(),
    )
    .await;
}

fn spec(name: &str) -> ScheduleSpec {
    ScheduleSpec {
        name: name.into(),
        agent: "echo".into(),
        input: json!({"text": "a\u{0}b"}),
        cron: "*/2 * * * * *".into(),
        timezone: "UTC".into(),
        overlap: Overlap::Skip,
        catchup: Catchup::Latest,
        paused: false,
    }
}

/// Schedules: created once per name, read back as written, moved on by compare-and-set.
pub async fn schedules_fire_once_per_tick(store: SharedStore) {
    let s = Schedule {
        spec: spec("nightly"),
        owner_id: Some(UserId::new()),
        created_at: t0(),
        updated_at: t0(),
        next_at: Some(t0().plus_ms(2_000)),
    };
    store.create_schedule(&s).await.unwrap();
    let dup = store.create_schedule(&s).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::ScheduleExists);
    assert_eq!(
        store.get_schedule("nightly").await.unwrap(),
        Some(s.clone())
    );
    assert!(store.due_schedules(t0(), 10).await.unwrap().is_empty());
    let due = store.due_schedules(t0().plus_ms(2_000), 10).await.unwrap();
    assert_eq!(due, vec![s.clone()]);
    assert_eq!(store.next_schedule_at().await.unwrap(), s.next_at);
    let (from, to) = (t0().plus_ms(2_000), Some(t0().plus_ms(4_000)));
    assert!(store.advance_schedule("nightly", from, to).await.unwrap());
    assert!(
        !store.advance_schedule("nightly", from, to).await.unwrap(),
        "a second server moving the same tick finds it moved"
    );
    let paused = Schedule {
        spec: ScheduleSpec {
            paused: true,
            ..spec("nightly")
        },
        next_at: None,
        ..s.clone()
    };
    assert!(store.replace_schedule(&paused).await.unwrap());
    assert!(
        store
            .due_schedules(t0().plus_ms(99_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_schedules().await.unwrap(), vec![paused]);
    // Its tasks, newest tick first, and the unfinished ones.
    let fired = |tick: u64| NewTask {
        schedule: Some("nightly".into()),
        scheduled_for: Some(t0().plus_ms(tick)),
        ..new_task("echo", 0, t0())
    };
    let (a, b) = (fired(2_000), fired(4_000));
    insert(&store, vec![a.clone(), b.clone()]).await;
    let runs = store.schedule_runs("nightly", 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.task_id).collect::<Vec<_>>(),
        vec![b.id, a.id]
    );
    assert_eq!(runs[0].status, TaskStatus::Queued);
    assert_eq!(runs[0].scheduled_for, t0().plus_ms(4_000));
    let got = store.get_task(b.id).await.unwrap().unwrap();
    assert_eq!(
        (got.schedule.as_deref(), got.scheduled_for),
        (Some("nightly"), Some(t0().plus_ms(4_000)))
    );
    assert_eq!(
        store
            .unfinished_schedule_tasks("nightly")
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store.delete_schedule("nightly").await.unwrap());
    assert!(!store.delete_schedule("nightly").await.unwrap());
    assert_eq!(store.get_schedule("nightly").await.unwrap(), None);
}
