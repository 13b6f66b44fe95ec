//! The completer's own decisions: what counts, what is retried and when, what goes dead,
//! how live events are numbered, and that a refused result fails alone. Against a real
//! SQLite store.

use std::time::Duration;

use sqlx::Connection;
use switchyard_cache::memory::{LocalBus, MemoryCache};
use switchyard_core::WorkerId;
use switchyard_core::task::{Task, TaskStatus};
use switchyard_store::conformance::{SharedStore, claim, insert, new_task};
use switchyard_store::sqlite::{Durability, SqliteStore};

use switchyard_core::agent::{AgentKind, AgentSpec};
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::retry::RetryPolicy;
use switchyard_core::store::ClaimedTask;
use switchyard_monitoring::Metrics;

use super::*;
use crate::waker::Waker;

/// A completion batch in which the database refuses one result (here a trigger
/// refuses outputs marked `poison`): the others are recorded, the refused one is
/// recorded as its attempt's failure, and no task stays `running`.
#[tokio::test(flavor = "current_thread")]
async fn one_refused_result_fails_its_attempt_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let sqlite = SqliteStore::open(&path, Durability::Normal).await.unwrap();
    sqlite.migrate().await.unwrap();
    let store: SharedStore = Arc::new(sqlite);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE UPDATE ON tasks \
         WHEN NEW.output IS NOT NULL AND json_extract(NEW.output, '$.poison') = 1 \
         BEGIN SELECT RAISE(ABORT, 'poisoned output'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let bus: Arc<dyn EventBus> = Arc::new(LocalBus::default());
    let agents = Arc::new(AgentRegistry::new(store.clone(), bus.clone()));
    agents.init().await.unwrap();
    let completer = Completer::start(CompleterDeps {
        store: store.clone(),
        bus: bus.clone(),
        cache: Arc::new(MemoryCache::new(100)),
        agents,
        max_batch: 100,
        keep_stream: 10_000,
        max_unstored: 1_000,
        metrics: Arc::new(Metrics::new(false)),
        waker: Waker::new(store.clone(), bus).0,
        limiter: store.clone(),
    });
    let now = Timestamp::now();
    insert(&store, (0..3).map(|_| new_task("echo", 0, now)).collect()).await;
    let claimed = claim(&store, WorkerId::new(), now, "echo", 3).await;
    assert_eq!(claimed.len(), 3);
    let outputs = [json!({"ok": 1}), json!({"poison": 1}), json!({"ok": 2})];
    let mut acks = Vec::new();
    for (c, output) in claimed.iter().zip(&outputs) {
        let (ack, rx) = oneshot::channel();
        acks.push(rx);
        completer
            .finish(AttemptResult {
                attempt: c.clone().into(),
                outcome: AttemptOutcome::Succeeded(output.clone()),
                ack: Some(ack),
            })
            .await
            .unwrap();
    }
    completer.flush().await;
    for rx in acks {
        let counted = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("every result is answered")
            .unwrap();
        assert!(counted, "every result counts, as a success or as a failure");
    }
    let task = |i: usize| {
        let store = store.clone();
        let id = claimed[i].id;
        async move { store.get_task(id).await.unwrap().unwrap() }
    };
    let (first, refused, last): (Task, Task, Task) = (task(0).await, task(1).await, task(2).await);
    assert_eq!(first.status, TaskStatus::Succeeded);
    assert_eq!(first.output, Some(outputs[0].clone()));
    assert_eq!(last.status, TaskStatus::Succeeded);
    assert_eq!(last.output, Some(outputs[2].clone()));
    assert_eq!(refused.status, TaskStatus::Dead);
    let error = refused.error.expect("the failure says why");
    assert_eq!(error.code, codes::RESULT_NOT_RECORDED);
    assert!(
        error.message.contains("could not be stored"),
        "{}",
        error.message
    );
}

/// The fixture's completer publishes at most this many events not yet stored.
const MAX_UNSTORED: usize = 4;

struct Fixture {
    dir: tempfile::TempDir,
    store: SharedStore,
    bus: Arc<dyn EventBus>,
    agents: Arc<AgentRegistry>,
    completer: Completer,
}

async fn fixture() -> Fixture {
    fixture_on(|_| Arc::new(LocalBus::default())).await
}

/// A fixture whose event bus `bus` makes, given the store.
async fn fixture_on(bus: impl FnOnce(&SharedStore) -> Arc<dyn EventBus>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("db.sqlite"), Durability::Normal)
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let store: SharedStore = Arc::new(sqlite);
    let bus = bus(&store);
    let agents = Arc::new(AgentRegistry::new(store.clone(), bus.clone()));
    agents.init().await.unwrap();
    let completer = Completer::start(CompleterDeps {
        store: store.clone(),
        bus: bus.clone(),
        cache: Arc::new(MemoryCache::new(100)),
        agents: agents.clone(),
        max_batch: 100,
        keep_stream: 10_000,
        max_unstored: MAX_UNSTORED,
        metrics: Arc::new(Metrics::new(true)),
        waker: Waker::new(store.clone(), bus.clone()).0,
        limiter: store.clone(),
    });
    Fixture {
        dir,
        store,
        bus,
        agents,
        completer,
    }
}

impl Fixture {
    /// Hands in one result and waits for the answer: whether it counted.
    async fn finish(&self, attempt: &ClaimedTask, outcome: AttemptOutcome) -> bool {
        let (ack, rx) = oneshot::channel();
        self.completer
            .finish(AttemptResult {
                attempt: attempt.clone().into(),
                outcome,
                ack: Some(ack),
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("every result is answered")
            .unwrap()
    }

    async fn task(&self, id: TaskId) -> Task {
        self.store.get_task(id).await.unwrap().unwrap()
    }

    /// A task of `echo`, claimed: its running attempt.
    async fn running(&self) -> ClaimedTask {
        let now = Timestamp::now();
        insert(&self.store, vec![new_task("echo", 0, now)]).await;
        claim(&self.store, WorkerId::new(), now, "echo", 1)
            .await
            .remove(0)
    }
}

/// A log line of the attempt `c`, now.
fn log_line(c: &ClaimedTask, message: &str) -> EventDraft {
    EventDraft {
        task_id: c.id,
        attempt: c.attempt,
        at: Timestamp::now(),
        body: EventBody::Log {
            level: LogLevel::Info,
            message: message.to_owned(),
        },
    }
}

/// Partial output `i` of the attempt `c`, now.
fn partial(c: &ClaimedTask, i: usize) -> EventDraft {
    EventDraft {
        task_id: c.id,
        attempt: c.attempt,
        at: Timestamp::now(),
        body: EventBody::Partial {
            data: json!({ "delta": i }),
        },
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_result_for_an_attempt_that_is_over_does_not_count() {
    let f = fixture().await;
    let now = Timestamp::now();
    insert(&f.store, vec![new_task("echo", 0, now)]).await;
    let claimed = claim(&f.store, WorkerId::new(), now, "echo", 1).await;
    let first = json!({"first": true});
    assert!(
        f.finish(&claimed[0], AttemptOutcome::Succeeded(first.clone()))
            .await
    );
    // The same attempt again (a worker that retried its send, or one whose lease was
    // taken over): answered `false`, and the recorded result stays.
    assert!(
        !f.finish(
            &claimed[0],
            AttemptOutcome::Succeeded(json!({"second": true}))
        )
        .await
    );
    let task = f.task(claimed[0].id).await;
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(task.output, Some(first));
}

#[tokio::test(flavor = "current_thread")]
async fn a_retryable_failure_waits_its_backoff_and_the_last_attempt_goes_dead() {
    let f = fixture().await;
    let mut flaky = AgentSpec::new("flaky", AgentKind::Echo);
    flaky.retry = RetryPolicy {
        max_attempts: 2,
        base_ms: 60_000,
        cap_ms: 60_000,
    };
    f.agents.install(flaky).await.unwrap();
    let now = Timestamp::now();
    insert(&f.store, vec![new_task("flaky", 0, now)]).await;
    let worker = WorkerId::new();
    let first = claim(&f.store, worker, now, "flaky", 1).await;
    let failure = TaskError::retryable("upstream_down", "try later");
    assert!(
        f.finish(&first[0], AttemptOutcome::Failed(failure.clone()))
            .await
    );
    let task = f.task(first[0].id).await;
    assert_eq!(task.status, TaskStatus::Retrying);
    assert!(task.run_at > now, "retried after a backoff, not at once");
    assert!(task.run_at <= Timestamp::now().plus_ms(60_000));
    assert!(
        claim(&f.store, worker, now, "flaky", 1).await.is_empty(),
        "not runnable before its backoff ends"
    );
    let second = claim(&f.store, worker, task.run_at, "flaky", 1).await;
    assert_eq!(second[0].attempt, 2);
    assert!(f.finish(&second[0], AttemptOutcome::Failed(failure)).await);
    let task = f.task(first[0].id).await;
    assert_eq!(task.status, TaskStatus::Dead, "max_attempts reached");
    assert_eq!(task.error.unwrap().code, "upstream_down");

    // A permanent failure is not retried, whatever attempts are left.
    insert(&f.store, vec![new_task("flaky", 0, now)]).await;
    let third = claim(&f.store, worker, now, "flaky", 1).await;
    let permanent = TaskError::permanent("bad_input", "cannot parse");
    assert!(f.finish(&third[0], AttemptOutcome::Failed(permanent)).await);
    assert_eq!(f.task(third[0].id).await.status, TaskStatus::Dead);
}

#[tokio::test(flavor = "current_thread")]
async fn live_events_follow_the_claim_in_order_and_a_finished_attempt_s_are_dropped() {
    let f = fixture().await;
    let mut bus = f.bus.subscribe();
    let c = &f.running().await;
    let log = |message: &str| log_line(c, message);
    for m in ["one", "two", "three"] {
        f.completer.emit(log(m)).await.unwrap();
    }
    f.completer.flush().await;
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(10), bus.recv())
            .await
            .expect("the events are published")
            .unwrap();
        if let BusMessage::Tasks { events } = &*msg {
            seqs.extend(events.iter().filter(|e| e.task_id == c.id).map(|e| e.seq));
        }
    }
    assert_eq!(seqs, vec![c.seq + 1, c.seq + 2, c.seq + 3]);
    let stored = f.store.task_logs(c.id, 0, 10).await.unwrap();
    let messages: Vec<&str> = stored.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["one", "two", "three"]);

    assert!(
        f.finish(c, AttemptOutcome::Succeeded(json!({"ok": true})))
            .await
    );
    f.completer.emit(log("late")).await.unwrap();
    f.completer.flush().await;
    let stored = f.store.task_logs(c.id, 0, 10).await.unwrap();
    assert_eq!(
        stored.len(),
        3,
        "a finished attempt's late line is not kept"
    );
}

/// A bus that notes, for each task event handed to it, the event's seq and the seq the
/// store holds for its task at that moment.
struct PeekingBus {
    inner: LocalBus,
    store: SharedStore,
    seen: parking_lot::Mutex<Vec<(u64, u64)>>,
}

#[async_trait::async_trait]
impl EventBus for PeekingBus {
    fn backend(&self) -> &'static str {
        "peeking"
    }

    async fn publish(&self, message: switchyard_core::event::SharedBusMessage) -> Result<()> {
        if let BusMessage::Tasks { events } = &*message {
            for e in events {
                let stored = self.store.get_task(e.task_id).await?.map_or(0, |t| t.seq);
                self.seen.lock().push((e.seq, stored));
            }
        }
        self.inner.publish(message).await
    }

    fn subscribe(
        &self,
    ) -> tokio::sync::broadcast::Receiver<switchyard_core::event::SharedBusMessage> {
        self.inner.subscribe()
    }
}

/// Followers do not wait for the write: live events are published once numbered, before
/// their rows commit, and are stored all the same.
#[tokio::test(flavor = "current_thread")]
async fn live_events_are_published_before_their_write_commits() {
    let peeking = std::sync::OnceLock::new();
    let f = fixture_on(|store| {
        let bus = Arc::new(PeekingBus {
            inner: LocalBus::default(),
            store: store.clone(),
            seen: Default::default(),
        });
        let _ = peeking.set(bus.clone());
        bus
    })
    .await;
    let c = f.running().await;
    for i in 0..3 {
        f.completer.emit(partial(&c, i)).await.unwrap();
    }
    f.completer.flush().await;
    let seen = peeking.get().unwrap().seen.lock().clone();
    assert_eq!(
        seen.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![c.seq + 1, c.seq + 2, c.seq + 3]
    );
    for (seq, stored) in &seen {
        assert!(
            stored < seq,
            "event {seq} was published after the store held {stored}"
        );
    }
    assert_eq!(f.task(c.id).await.seq, c.seq + 3);
    let kept = f.store.task_stream(c.id, 0, 10).await.unwrap();
    assert_eq!(kept.events.len(), 3, "published and stored");
}

/// An attempt that ends without the completer (here its result is recorded straight in
/// the store, as another server would): its final event follows every number handed
/// out, and once the next renewal of its numbers is refused, its events are dropped.
#[tokio::test(flavor = "current_thread")]
async fn events_of_an_attempt_ended_elsewhere_stop_after_its_renewal() {
    let f = fixture().await;
    let c = f.running().await;
    let log = |message: &str| log_line(&c, message);
    f.completer.emit(log("first")).await.unwrap();
    f.completer.flush().await;
    let done = f
        .store
        .complete_tasks(&[Completion {
            task_id: c.id,
            attempt: c.attempt,
            at: Timestamp::now(),
            outcome: Outcome::Succeeded { output: json!(1) },
        }])
        .await
        .unwrap();
    let final_seq = done.transitions[0].seq;
    assert!(
        final_seq > c.seq + numbering::MIN_BLOCK,
        "the final event ({final_seq}) follows the block the first event came from"
    );
    tokio::time::sleep(numbering::RENEW_AFTER + Duration::from_millis(300)).await;
    // Numbered from the block in hand; numbering it asks for a renewal, refused.
    f.completer.emit(log("in flight")).await.unwrap();
    f.completer.flush().await;
    f.completer.emit(log("after")).await.unwrap();
    f.completer.flush().await;
    let stored: Vec<(u64, String)> = f
        .store
        .task_logs(c.id, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.seq, l.message))
        .collect();
    assert_eq!(
        stored,
        vec![
            (c.seq + 1, "first".to_owned()),
            (c.seq + 2, "in flight".to_owned())
        ]
    );
    assert_eq!(
        f.task(c.id).await.seq,
        final_seq,
        "the final event stays the last"
    );
}

/// While the database holds the writer up, the completer publishes no more than
/// `max_unstored` events it has not stored (a follower that resumes must find each one
/// stored or in the event hub's window); the rest wait, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_wait_for_a_writer_that_is_held_up() {
    let f = fixture().await;
    let mut bus = f.bus.subscribe();
    let c = f.running().await;
    let partial = |i: usize| partial(&c, i);
    f.completer.emit(partial(0)).await.unwrap();
    f.completer.flush().await;
    // Another connection takes the database's write lock: the writer waits for it.
    let path = f.dir.path().join("db.sqlite");
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let total = 3 * MAX_UNSTORED;
    for i in 1..=total {
        f.completer.emit(partial(i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut published = Vec::new();
    let take = |msg: switchyard_core::event::SharedBusMessage, into: &mut Vec<u64>| {
        if let BusMessage::Tasks { events } = &*msg {
            into.extend(events.iter().filter(|e| e.task_id == c.id).map(|e| e.seq));
        }
    };
    while let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_millis(300), bus.recv()).await {
        take(msg, &mut published);
    }
    assert_eq!(
        published.len(),
        1 + MAX_UNSTORED,
        "the first event, then as many as may wait unstored: {published:?}"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    f.completer.flush().await;
    while published.len() < 1 + total {
        let msg = tokio::time::timeout(Duration::from_secs(10), bus.recv())
            .await
            .expect("the rest are published once the writer moves")
            .unwrap();
        take(msg, &mut published);
    }
    assert!(published.windows(2).all(|w| w[0] < w[1]), "{published:?}");
    let stored = f.store.task_stream(c.id, 0, 100).await.unwrap();
    assert_eq!(stored.events.len(), 1 + total, "every event is stored");
}

/// The event writer answers an ask for numbers at once, while the events handed in
/// before it wait for their pace; a hurry (the completer about to record a result) then
/// stores them without waiting it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_for_numbers_do_not_wait_for_the_pace_of_events() {
    use super::event_writer::EventWriter;
    use switchyard_core::event::TaskEvent;
    use switchyard_core::store::{NumberAsk, NumberedEvent};

    let f = fixture().await;
    let c = f.running().await;
    let ask = |count| NumberAsk {
        task_id: c.id,
        attempt: c.attempt,
        count,
    };
    let block = f.store.reserve_event_numbers(&[ask(8)]).await.unwrap();
    let mut writer = EventWriter::start(f.store.clone(), 10_000, 100, Duration::from_secs(3_600));
    let event = NumberedEvent {
        attempt: c.attempt,
        event: Arc::new(TaskEvent {
            task_id: c.id,
            seq: block[0].first,
            agent: "echo".into(),
            owner_id: None,
            at: Timestamp::now(),
            body: partial(&c, 1).body,
        }),
    };
    let room = writer.room(1).await.unwrap();
    writer.store(vec![event], room).await;
    writer.reserve(vec![ask(64)]);
    let grant = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(g) = writer.grants().pop() {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the ask is answered without waiting for the hour-long pace");
    let renewed = grant.blocks.unwrap();
    assert_eq!(renewed[0].first, block[0].last + 1);
    assert_eq!(writer.unstored(), 1, "the event still waits for its pace");
    tokio::time::timeout(Duration::from_secs(20), writer.stored())
        .await
        .expect("a hurry stores it at once");
    let stored = f.store.task_stream(c.id, 0, 10).await.unwrap();
    assert_eq!(stored.events.len(), 1);
}
