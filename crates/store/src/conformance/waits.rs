//! Durable waits: a run that ends in a wait leaves the task `waiting` without a worker,
//! not counted as an attempt; the wait's time, its signal or its children's end queue
//! it again with the wait's step recorded; signals sent early are kept.

use switchyard_core::step::StepStatus;
use switchyard_core::wait::{ResumeReason, SignalSent, Wait, WaitBegun, WaitKind, codes};

use super::*;

fn sleep_until(name: &str, until: Timestamp) -> Wait {
    Wait {
        until: Some(until),
        ..Wait::named(WaitKind::Sleep, name.into())
    }
}

fn signal(name: &str, until: Option<Timestamp>) -> Wait {
    Wait {
        signal: Some(name.into()),
        until,
        ..Wait::named(WaitKind::Signal, format!("signal:{name}"))
    }
}

async fn begin(store: &SharedStore, task: &ClaimedTask, wait: &Wait, now: Timestamp) -> WaitBegun {
    store
        .begin_wait(task.id, task.attempt, wait, now, 1_000)
        .await
        .expect("begin wait")
}

pub async fn waits_suspend_and_resume_on_time(store: SharedStore) {
    let t = new_task("napper", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let worker = WorkerId::new();
    let first = claim(&store, worker, t0(), "napper", 1).await.remove(0);
    let wake = t0().plus_ms(1_000);
    let nap = sleep_until("nap", wake);
    let WaitBegun::Suspended { seq } = begin(&store, &first, &nap, t0().plus_ms(1)).await else {
        panic!("a sleep that is not over ends the run");
    };
    let task = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Waiting);
    assert_eq!(task.seq, seq);
    assert_eq!(task.wait.as_ref(), Some(&nap));
    assert_eq!(
        task.attempts.last().map(|a| a.status),
        Some(AttemptStatus::Suspended)
    );
    assert!(
        claim(&store, worker, wake, "napper", 1).await.is_empty(),
        "a waiting task is not claimed"
    );
    assert_eq!(
        begin(&store, &first, &nap, t0().plus_ms(2)).await,
        WaitBegun::LeaseLost,
        "the suspended attempt is over"
    );
    assert_eq!(store.next_wait_deadline().await.unwrap(), Some(wake));
    assert!(
        store
            .resume_due(wake.minus_ms(1), 100)
            .await
            .unwrap()
            .is_empty()
    );

    let resumed = store.resume_due(wake, 100).await.unwrap();
    assert_eq!(resumed.len(), 1);
    let r = &resumed[0];
    assert_eq!((r.task_id, r.reason), (t.id, ResumeReason::Time));
    assert_eq!(r.seq, seq + 2, "the step's event, then `resumed`");
    assert_eq!(
        (r.step.status, r.step.output.clone(), r.step.attempt),
        (StepStatus::Succeeded, Some(json!(null)), 1)
    );
    assert!(store.resume_due(wake, 100).await.unwrap().is_empty());
    let task = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!((task.status, task.wait), (TaskStatus::Queued, None));

    // The next run is not counted as a new attempt of the run of attempts.
    let second = claim(&store, worker, wake, "napper", 1).await.remove(0);
    assert_eq!((second.attempt, second.attempts_in_run), (2, 1));
    assert_eq!(
        store.succeeded_steps(t.id).await.unwrap(),
        vec![("nap".to_owned(), json!(null))]
    );
    match begin(&store, &second, &nap, wake.plus_ms(1)).await {
        WaitBegun::Ready { step, recorded } => {
            assert!(!recorded, "the sleep was over in the earlier run");
            assert_eq!(step.output, Some(json!(null)));
        }
        other => panic!("{other:?}"),
    }
    // A sleep already over does not end the run.
    match begin(&store, &second, &sleep_until("past", t0()), wake.plus_ms(2)).await {
        WaitBegun::Ready { recorded, .. } => assert!(recorded),
        other => panic!("{other:?}"),
    }
    // A waiting task is cancelled at once.
    let WaitBegun::Suspended { .. } = begin(
        &store,
        &second,
        &sleep_until("long", wake.plus_ms(60_000)),
        wake.plus_ms(3),
    )
    .await
    else {
        panic!("suspends");
    };
    match store.cancel_task(t.id, wake.plus_ms(4)).await.unwrap() {
        CancelOutcome::Cancelled(tr) => assert_eq!(tr.status, TaskStatus::Cancelled),
        other => panic!("{other:?}"),
    }
    assert!(
        store
            .resume_due(wake.plus_ms(60_000), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn signals_wake_waits_or_are_kept(store: SharedStore) {
    let t = new_task("approver", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let worker = WorkerId::new();
    let run = claim(&store, worker, t0(), "approver", 1).await.remove(0);
    let early = json!({"note": "a\u{0}b"});

    // Sent before the wait: kept, and the wait takes it without ending the run.
    let sent = store
        .send_signal(t.id, "go", &early, t0().plus_ms(1))
        .await
        .unwrap();
    assert!(matches!(sent, Some(SignalSent::Kept { .. })), "{sent:?}");
    match begin(&store, &run, &signal("go", None), t0().plus_ms(2)).await {
        WaitBegun::Ready { step, recorded } => {
            assert!(recorded);
            assert_eq!(step.output, Some(early.clone()));
            assert_eq!(step.name, "signal:go");
        }
        other => panic!("{other:?}"),
    }
    // Consumed: a second wait for it waits.
    let again = Wait {
        name: "signal:go#2".into(),
        ..signal("go", None)
    };
    let WaitBegun::Suspended { seq } = begin(&store, &run, &again, t0().plus_ms(3)).await else {
        panic!("the kept signal was consumed by the first wait");
    };
    // Another signal is kept; the awaited one wakes the task.
    let other = store
        .send_signal(t.id, "other", &json!(1), t0().plus_ms(4))
        .await
        .unwrap();
    let Some(SignalSent::Kept { seq: kept_seq }) = other else {
        panic!("{other:?}");
    };
    assert_eq!(kept_seq, seq + 1);
    let approval = json!({"approved": true});
    let woke = store
        .send_signal(t.id, "go", &approval, t0().plus_ms(5))
        .await
        .unwrap();
    let Some(SignalSent::Resumed {
        signal_seq,
        resumed,
    }) = woke
    else {
        panic!("{woke:?}");
    };
    assert_eq!(signal_seq, kept_seq + 1);
    assert_eq!(resumed.seq, signal_seq + 2);
    assert_eq!(resumed.reason, ResumeReason::Signal);
    assert_eq!(resumed.step.name, "signal:go#2");
    assert_eq!(resumed.step.output, Some(approval.clone()));
    let task = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!((task.status, task.seq), (TaskStatus::Queued, resumed.seq));

    // A signal wait that times out: its step fails, and the next run is told.
    let run = claim(&store, worker, t0().plus_ms(5), "approver", 1)
        .await
        .remove(0);
    let deadline = t0().plus_ms(100);
    let never = signal("never", Some(deadline));
    let WaitBegun::Suspended { .. } = begin(&store, &run, &never, t0().plus_ms(6)).await else {
        panic!("suspends");
    };
    let resumed = store.resume_due(deadline, 100).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].reason, ResumeReason::Timeout);
    assert_eq!(resumed[0].step.status, StepStatus::Failed);
    assert_eq!(
        resumed[0].step.error.as_ref().map(|e| e.code.as_str()),
        Some(codes::WAIT_TIMEOUT)
    );
    let run = claim(&store, worker, deadline, "approver", 1)
        .await
        .remove(0);
    assert_eq!(
        begin(&store, &run, &never, deadline.plus_ms(1)).await,
        WaitBegun::TimedOut
    );
    // The signal kept earlier is still there for a wait on it.
    match begin(&store, &run, &signal("other", None), deadline.plus_ms(2)).await {
        WaitBegun::Ready { step, .. } => assert_eq!(step.output, Some(json!(1))),
        other => panic!("{other:?}"),
    }

    // A finished task takes no signal; an unknown one is not found.
    store
        .complete_tasks(&[done(
            &run,
            deadline.plus_ms(3),
            Outcome::Succeeded {
                output: json!("ok"),
            },
        )])
        .await
        .unwrap();
    let refused = store
        .send_signal(t.id, "go", &json!(1), deadline.plus_ms(4))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::TaskFinished);
    assert!(
        store
            .send_signal(TaskId::new(), "go", &json!(1), deadline)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn joins_wait_for_their_children(store: SharedStore) {
    let parent = new_task("parent", 0, t0());
    insert(&store, vec![parent.clone()]).await;
    let worker = WorkerId::new();
    let run = claim(&store, worker, t0(), "parent", 1).await.remove(0);
    let child = |n: i64| NewTask {
        parent_id: Some(parent.id),
        input: json!({ "n": n }),
        ..new_task("child", 0, t0())
    };
    let (c1, c2) = (child(1), child(2));
    let stranger = new_task("child", 0, t0());
    insert(&store, vec![c1.clone(), c2.clone(), stranger.clone()]).await;
    assert_eq!(store.count_children(parent.id).await.unwrap(), 2);

    let join = |children: Vec<TaskId>| Wait {
        children,
        ..Wait::named(WaitKind::Children, "join:#1".into())
    };
    assert_eq!(
        begin(&store, &run, &join(vec![c1.id, stranger.id]), t0()).await,
        WaitBegun::NotAChild(stranger.id)
    );
    let both = join(vec![c2.id, c1.id]);
    let WaitBegun::Suspended { .. } = begin(&store, &run, &both, t0().plus_ms(1)).await else {
        panic!("children still to run: the parent waits");
    };
    assert!(
        store
            .resume_joined(Some(&[parent.id]), t0().plus_ms(2))
            .await
            .unwrap()
            .is_empty()
    );

    let children = claim(&store, worker, t0().plus_ms(2), "child", 2).await;
    assert_eq!(children.len(), 2);
    let outcome = |c: &ClaimedTask| {
        if c.id == c1.id {
            Outcome::Succeeded {
                output: json!({"sum": 1}),
            }
        } else {
            Outcome::Dead {
                error: TaskError::permanent("boom", "it broke"),
            }
        }
    };
    let first = &children[0];
    store
        .complete_tasks(&[done(first, t0().plus_ms(3), outcome(first))])
        .await
        .unwrap();
    assert!(
        store
            .resume_joined(None, t0().plus_ms(4))
            .await
            .unwrap()
            .is_empty(),
        "one child still runs"
    );
    let second = &children[1];
    store
        .complete_tasks(&[done(second, t0().plus_ms(5), outcome(second))])
        .await
        .unwrap();
    let resumed = store.resume_joined(None, t0().plus_ms(6)).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].reason, ResumeReason::Children);
    let results = resumed[0].step.output.clone().unwrap();
    assert_eq!(results[0]["task_id"], json!(c2.id));
    assert_eq!(results[0]["status"], "dead");
    assert_eq!(results[0]["error"]["code"], "boom");
    assert_eq!(results[1]["status"], "succeeded");
    assert_eq!(results[1]["output"], json!({"sum": 1}));
    assert!(
        store
            .resume_joined(Some(&[parent.id]), t0().plus_ms(7))
            .await
            .unwrap()
            .is_empty(),
        "resumed once"
    );
    // The next run finds the join over.
    let run = claim(&store, worker, t0().plus_ms(7), "parent", 1)
        .await
        .remove(0);
    match begin(&store, &run, &both, t0().plus_ms(8)).await {
        WaitBegun::Ready { step, recorded } => {
            assert!(!recorded);
            assert_eq!(step.output, Some(results));
        }
        other => panic!("{other:?}"),
    }
}
