//! Durable steps: kept across runs, never replaced once succeeded, bounded per task, and
//! recorded only for the attempt the task is running.

use switchyard_core::step::{StepDraft, StepOutcome, StepRecord, StepStatus};

use super::*;

fn step(task: &ClaimedTask, name: &str, outcome: StepOutcome, at: Timestamp) -> StepDraft {
    StepDraft {
        task_id: task.id,
        attempt: task.attempt,
        name: name.to_owned(),
        outcome,
        started_at: at,
        finished_at: at.plus_ms(3),
    }
}

pub async fn steps_are_kept_across_runs(store: SharedStore) {
    let t = new_task("flaky", 0, t0());
    insert(&store, vec![t.clone()]).await;
    let worker = WorkerId::new();
    let first = claim(&store, worker, t0(), "flaky", 1).await.remove(0);
    let found = json!({"hits": 12, "text": "a\u{0}b"});
    let ok = |v: serde_json::Value| StepOutcome::Succeeded(v);
    let busy = TaskError::retryable("busy", "upstream busy");
    for (draft, expected) in [
        (
            step(&first, "search", ok(found.clone()), t0()),
            StepRecord::Recorded,
        ),
        (
            step(&first, "nothing", ok(json!(null)), t0()),
            StepRecord::Recorded,
        ),
        (
            step(&first, "review", StepOutcome::Failed(busy.clone()), t0()),
            StepRecord::Recorded,
        ),
        // A second report of a succeeded step keeps the first result.
        (
            step(&first, "search", ok(json!("other")), t0()),
            StepRecord::Kept,
        ),
    ] {
        assert_eq!(store.record_step(&draft, 1_000).await.unwrap(), expected);
    }

    // The attempt fails; the next run sees the succeeded steps only.
    let retry_at = t0().plus_ms(100);
    store
        .complete_tasks(&[done(
            &first,
            t0().plus_ms(10),
            Outcome::Retry {
                error: busy.clone(),
                run_at: retry_at,
            },
        )])
        .await
        .unwrap();
    let stale = step(&first, "late", ok(json!(1)), t0().plus_ms(20));
    assert_eq!(
        store.record_step(&stale, 1_000).await.unwrap(),
        StepRecord::LeaseLost,
        "the attempt is over"
    );
    let second = claim(&store, worker, retry_at, "flaky", 1).await.remove(0);
    assert_eq!(
        store.succeeded_steps(t.id).await.unwrap(),
        vec![
            ("search".to_owned(), found.clone()),
            ("nothing".to_owned(), json!(null))
        ]
    );
    let at = retry_at.plus_ms(5);
    assert_eq!(
        store
            .record_step(&step(&second, "review", ok(json!("approved")), at), 1_000)
            .await
            .unwrap(),
        StepRecord::Recorded,
        "a failed step's next run replaces it"
    );
    // At the limit, a new step is refused; a known one is still recorded.
    assert_eq!(
        store
            .record_step(&step(&second, "extra", ok(json!(1)), at), 3)
            .await
            .unwrap(),
        StepRecord::TooMany
    );
    assert_eq!(
        store
            .record_step(&step(&second, "search", ok(json!(2)), at), 3)
            .await
            .unwrap(),
        StepRecord::Kept
    );

    let steps = store.task_steps(t.id).await.unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["search", "nothing", "review"],
        "first-recorded order"
    );
    assert_eq!(
        (steps[0].status, steps[0].attempt, steps[0].output.as_ref()),
        (StepStatus::Succeeded, 1, Some(&found))
    );
    assert_eq!(
        (steps[0].started_at, steps[0].finished_at),
        (t0(), t0().plus_ms(3))
    );
    assert_eq!(steps[1].output, Some(json!(null)));
    assert_eq!(
        (steps[2].status, steps[2].attempt, steps[2].output.as_ref()),
        (StepStatus::Succeeded, 2, Some(&json!("approved")))
    );
    assert_eq!(steps[2].error, None);

    // A failed step keeps its error; unknown tasks have no running attempt.
    let other = new_task("flaky", 0, t0());
    insert(&store, vec![other.clone()]).await;
    let run = claim(&store, worker, t0(), "flaky", 1).await.remove(0);
    let error = TaskError::permanent("bad_input", "no such page \u{0}");
    store
        .record_step(
            &step(&run, "fetch", StepOutcome::Failed(error.clone()), t0()),
            1_000,
        )
        .await
        .unwrap();
    let failed = store.task_steps(other.id).await.unwrap().remove(0);
    assert_eq!(
        (failed.status, failed.output, failed.error),
        (StepStatus::Failed, None, Some(error))
    );
    assert!(store.succeeded_steps(other.id).await.unwrap().is_empty());
    let ghost = ClaimedTask {
        id: TaskId::new(),
        ..run.clone()
    };
    assert_eq!(
        store
            .record_step(&step(&ghost, "x", ok(json!(1)), t0()), 1_000)
            .await
            .unwrap(),
        StepRecord::LeaseLost
    );
    assert!(store.task_steps(ghost.id).await.unwrap().is_empty());
}
