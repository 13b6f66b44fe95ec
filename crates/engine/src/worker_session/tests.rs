//! The session's own bookkeeping, against a real SQLite store and a running dispatcher.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use switchyard_cache::memory::{LocalBus, MemoryCache};
use switchyard_core::agent::{AgentKind, AgentSpec};
use switchyard_core::store::{SoleLeader, Store};
use switchyard_core::task::{AttemptStatus, Task, TaskStatus};
use switchyard_store::conformance::new_task;
use switchyard_store::sqlite::{Durability, SqliteStore};

use super::*;
use crate::{Backends, Duties, EngineConfig};

const WAIT: Duration = Duration::from_secs(60);

/// An engine over a migrated SQLite store in a directory of its own (kept while the guard
/// lives), dispatching, with the agents `served` (echo) and `other` (remote, served by
/// no one here).
pub(crate) async fn engine(heartbeat_ms: u64) -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite"), Durability::Normal)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut config = EngineConfig::default();
    config.queue.heartbeat_ms = heartbeat_ms;
    config.queue.poll_interval_ms = 50;
    let engine = Engine::start(
        Backends {
            store: Arc::new(store),
            cache: Arc::new(MemoryCache::default()),
            bus: Arc::new(LocalBus::default()),
            leader: Arc::new(SoleLeader),
            limiter: None,
            objects: Arc::new(
                switchyard_files::LocalObjects::open(&dir.path().join("files"))
                    .await
                    .unwrap(),
            ),
            backup_target: None,
        },
        config,
        Duties {
            dispatch: true,
            maintenance: false,
        },
    )
    .await
    .unwrap();
    for (name, kind) in [("served", AgentKind::Echo), ("other", AgentKind::Remote)] {
        engine
            .agents
            .install(AgentSpec::new(name, kind))
            .await
            .unwrap();
    }
    (dir, engine)
}

async fn open(engine: &Arc<Engine>, slots: u32) -> (WorkerSession, Assignments) {
    WorkerSession::open(
        engine,
        WorkerProfile {
            name: "session-test".into(),
            kind: "remote".into(),
            serves: Serves::Agents(HashSet::from(["served".to_owned()])),
            agents: vec!["served".into()],
            slots,
            version: "test".into(),
            host: None,
        },
    )
    .await
    .unwrap()
}

/// Queues `n` tasks of `agent` and wakes the dispatcher.
async fn queue(engine: &Engine, agent: &str, n: usize) -> Vec<TaskId> {
    let now = Timestamp::now();
    let tasks: Vec<_> = (0..n).map(|_| new_task(agent, 0, now)).collect();
    let ids = tasks.iter().map(|t| t.id).collect();
    engine.store.insert_tasks(tasks, now).await.unwrap();
    engine.dispatcher.mark_queued([agent.to_owned()]);
    ids
}

/// The next `n` tasks claimed for the session, held.
async fn take(session: &WorkerSession, assignments: &mut Assignments, n: usize) -> Vec<AttemptRef> {
    let mut held = Vec::new();
    while held.len() < n {
        let batch = tokio::time::timeout(WAIT, assignments.next())
            .await
            .expect("tasks are claimed for the session")
            .expect("the dispatcher runs");
        for task in batch {
            let attempt = AttemptRef::from(task);
            session.hold(Arc::new(attempt.clone()));
            held.push(attempt);
        }
    }
    assert_eq!(held.len(), n, "no more than asked for");
    held
}

async fn task(engine: &Engine, id: TaskId) -> Task {
    engine.store.get_task(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn holds_an_attempt_until_its_outcome_is_handed_in() {
    let (_dir, engine) = engine(5_000).await;
    let (session, mut assignments) = open(&engine, 4).await;
    queue(&engine, "served", 2).await;
    let held = take(&session, &mut assignments, 2).await;
    let (first, second) = (&held[0], &held[1]);

    assert_eq!(session.in_flight(), 2);
    assert!(session.holds(first.task_id, first.attempt));
    assert!(!session.holds(first.task_id, first.attempt + 1));
    assert!(!session.holds(TaskId::new(), 1));

    let handed = session
        .finish(
            first.task_id,
            first.attempt,
            AttemptOutcome::Succeeded(json!({"ok": true})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(handed, Handover::Handed);
    assert!(!session.holds(first.task_id, first.attempt));
    assert!(session.holds(second.task_id, second.attempt));
    assert_eq!(session.in_flight(), 1);

    engine.completer.flush().await;
    assert_eq!(
        task(&engine, first.task_id).await.status,
        TaskStatus::Succeeded
    );
    assert_eq!(
        task(&engine, second.task_id).await.status,
        TaskStatus::Running
    );
}

#[tokio::test]
async fn a_result_for_an_attempt_not_held_is_refused() {
    let (_dir, engine) = engine(5_000).await;
    let (session, mut assignments) = open(&engine, 4).await;
    queue(&engine, "served", 1).await;
    let held = take(&session, &mut assignments, 1).await;
    let attempt = &held[0];
    let succeeded = || AttemptOutcome::Succeeded(json!(1));

    let (ack, answer) = oneshot::channel();
    let refused = session
        .finish(attempt.task_id, attempt.attempt + 1, succeeded(), Some(ack))
        .await
        .unwrap();
    assert_eq!(refused, Handover::NotHeld, "another attempt of a held task");
    assert!(answer.await.is_err(), "nothing was handed to the completer");
    let unknown = session
        .finish(TaskId::new(), 1, succeeded(), None)
        .await
        .unwrap();
    assert_eq!(unknown, Handover::NotHeld, "a task never held");
    assert!(session.holds(attempt.task_id, attempt.attempt));

    let (ack, answer) = oneshot::channel();
    let handed = session
        .finish(attempt.task_id, attempt.attempt, succeeded(), Some(ack))
        .await
        .unwrap();
    assert_eq!(handed, Handover::Handed);
    assert!(answer.await.unwrap(), "the result counted");
    let again = session
        .finish(attempt.task_id, attempt.attempt, succeeded(), None)
        .await
        .unwrap();
    assert_eq!(
        again,
        Handover::NotHeld,
        "a second result for the same attempt"
    );
    assert_eq!(session.in_flight(), 0);
}

#[tokio::test]
async fn a_finished_attempt_frees_its_slot() {
    let (_dir, engine) = engine(5_000).await;
    let (session, mut assignments) = open(&engine, 1).await;
    queue(&engine, "served", 2).await;
    let first = take(&session, &mut assignments, 1).await.remove(0);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), assignments.next())
            .await
            .is_err(),
        "one slot, one task"
    );
    session
        .finish(
            first.task_id,
            first.attempt,
            AttemptOutcome::Succeeded(json!(1)),
            None,
        )
        .await
        .unwrap();
    let second = take(&session, &mut assignments, 1).await.remove(0);
    assert_ne!(second.task_id, first.task_id);
}

#[tokio::test]
async fn a_cancel_reaches_only_the_attempt_it_names() {
    let (_dir, engine) = engine(5_000).await;
    let (session, mut assignments) = open(&engine, 4).await;
    let mut cancels = session.cancels();
    queue(&engine, "served", 1).await;
    let attempt = take(&session, &mut assignments, 1).await.remove(0);
    // Held again to watch its token (the same attempt: the table keeps one entry).
    let token = session.hold(Arc::new(attempt.clone()));

    let worker_id = session.worker_id();
    let misses = [
        (attempt.task_id, attempt.attempt + 1, worker_id),
        (attempt.task_id, attempt.attempt, WorkerId::new()),
        (TaskId::new(), attempt.attempt, worker_id),
    ];
    for (task_id, attempt, worker_id) in misses {
        engine
            .bus
            .publish(Arc::new(BusMessage::Cancel {
                task_id,
                attempt,
                worker_id,
            }))
            .await
            .unwrap();
    }
    engine
        .bus
        .publish(Arc::new(BusMessage::Cancel {
            task_id: attempt.task_id,
            attempt: attempt.attempt,
            worker_id,
        }))
        .await
        .unwrap();

    let request = tokio::time::timeout(WAIT, cancels.next())
        .await
        .expect("the cancel for the held attempt is routed")
        .expect("the bus is open");
    assert_eq!(
        request,
        CancelRequest {
            task_id: attempt.task_id,
            attempt: attempt.attempt,
        },
        "the requests for other attempts, workers and tasks were passed over"
    );
    assert!(token.is_cancelled());
    assert_eq!(session.in_flight(), 1, "a cancel request forgets nothing");
}

#[tokio::test]
async fn a_lost_worker_fails_exactly_what_it_held() {
    let (_dir, engine) = engine(5_000).await;
    let (session, mut assignments) = open(&engine, 8).await;
    let worker_id = session.worker_id();
    queue(&engine, "served", 2).await;
    let held = take(&session, &mut assignments, 2).await;
    let (finished, lost) = (&held[0], &held[1]);
    session
        .finish(
            finished.task_id,
            finished.attempt,
            AttemptOutcome::Succeeded(json!(1)),
            None,
        )
        .await
        .unwrap();
    let untouched = queue(&engine, "other", 1).await.remove(0);
    // Claimed for the worker but not yet taken from its assignments.
    let unassigned = queue(&engine, "served", 1).await.remove(0);
    tokio::time::timeout(WAIT, async {
        while task(&engine, unassigned).await.status != TaskStatus::Running {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the dispatcher claims it");
    tokio::time::sleep(Duration::from_millis(100)).await;

    session.lost(assignments).await.unwrap();
    engine.completer.flush().await;

    let worker_lost = |t: &Task, message: &str| {
        assert!(
            matches!(t.status, TaskStatus::Retrying | TaskStatus::Queued),
            "{:?}",
            t.status
        );
        let attempt = t.attempts.last().unwrap();
        assert_eq!(attempt.status, AttemptStatus::Failed);
        assert_eq!(attempt.worker_id, Some(worker_id));
        let error = attempt.error.as_ref().unwrap();
        assert_eq!(error.code, codes::WORKER_LOST);
        assert_eq!(error.message, message);
    };
    worker_lost(
        &task(&engine, lost.task_id).await,
        "the worker \"session-test\" disconnected during the attempt",
    );
    worker_lost(&task(&engine, unassigned).await, "the worker disconnected");
    let finished = task(&engine, finished.task_id).await;
    assert_eq!(finished.status, TaskStatus::Succeeded);
    assert_eq!(finished.attempts.len(), 1);
    let untouched = task(&engine, untouched).await;
    assert_eq!(untouched.status, TaskStatus::Queued);
    assert!(untouched.attempts.is_empty());

    let workers = engine
        .store
        .list_workers(Timestamp::now().minus_ms(60_000))
        .await
        .unwrap();
    assert!(workers.iter().all(|w| w.id != worker_id), "deregistered");
}

#[tokio::test]
async fn the_registry_record_is_written_at_most_once_per_heartbeat_interval() {
    let heartbeat_ms = 400;
    let (_dir, engine) = engine(heartbeat_ms).await;
    let (session, mut assignments) = open(&engine, 4).await;
    let recorded = || async {
        let since = Timestamp::now().minus_ms(60_000);
        let workers = engine.store.list_workers(since).await.unwrap();
        let w = workers
            .iter()
            .find(|w| w.id == session.worker_id())
            .cloned();
        w.expect("registered")
    };
    assert_eq!(recorded().await.slots_in_use, 0);
    queue(&engine, "served", 1).await;
    take(&session, &mut assignments, 1).await;

    session.heartbeat().await;
    assert_eq!(
        recorded().await.slots_in_use,
        0,
        "written at open, not again this soon"
    );
    tokio::time::sleep(Duration::from_millis(heartbeat_ms / 2 + 50)).await;
    session.heartbeat().await;
    assert_eq!(recorded().await.slots_in_use, 1);
    session.deregister(assignments).await.unwrap();
}
