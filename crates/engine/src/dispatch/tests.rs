//! The dispatcher's own decisions: which consumer takes which agent under which limit,
//! how slots are reserved, claimed, shared and given back. Against a real SQLite store.

use std::collections::HashSet;
use std::sync::Arc;

use switchyard_cache::memory::LocalBus;
use switchyard_core::agent::{AgentKind, AgentSpec};
use switchyard_core::cache::EventBus;
use switchyard_core::{Timestamp, WorkerId};
use switchyard_monitoring::Metrics;
use switchyard_store::conformance::{SharedStore, insert, new_task};
use switchyard_store::sqlite::{Durability, SqliteStore};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    store: SharedStore,
    dispatcher: Arc<Dispatcher>,
}

/// A dispatcher over a fresh database holding the built-in agents and two remote ones:
/// `summarize` (at most 2 running in the cluster) and `scrape` (no limit).
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("db.sqlite"), Durability::Normal)
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let store: SharedStore = Arc::new(sqlite);
    let bus: Arc<dyn EventBus> = Arc::new(LocalBus::default());
    let agents = Arc::new(AgentRegistry::new(store.clone(), bus.clone()));
    agents.init().await.unwrap();
    let mut summarize = AgentSpec::new("summarize", AgentKind::Remote);
    summarize.concurrency = Some(2);
    agents.install(summarize).await.unwrap();
    agents
        .install(AgentSpec::new("scrape", AgentKind::Remote))
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        bus,
        agents,
        30_000,
        1_000,
        Arc::new(Metrics::new(true)),
        store.clone(),
    );
    Fixture {
        _dir: dir,
        store,
        dispatcher,
    }
}

fn builtin(slots: u32) -> ConsumerConfig {
    ConsumerConfig {
        worker_id: WorkerId::new(),
        name: "builtin".into(),
        serves: Serves::BuiltinKinds,
        slots,
    }
}

fn remote(slots: u32, agents: &[&str]) -> ConsumerConfig {
    ConsumerConfig {
        worker_id: WorkerId::new(),
        name: "remote".into(),
        serves: Serves::Agents(agents.iter().map(|a| a.to_string()).collect::<HashSet<_>>()),
        slots,
    }
}

fn state_of(d: &Dispatcher, worker: WorkerId) -> Arc<ConsumerState> {
    d.consumers
        .read()
        .iter()
        .find(|c| c.config.worker_id == worker)
        .cloned()
        .expect("registered")
}

#[tokio::test(flavor = "current_thread")]
async fn a_consumer_takes_the_agents_it_serves_under_their_limits() {
    let f = fixture().await;
    let d = &f.dispatcher;
    let b = d.register(builtin(4));
    let r = d.register(remote(4, &["summarize", "scrape", "echo"]));
    let (b, r) = (state_of(d, b.worker_id()), state_of(d, r.worker_id()));
    assert_eq!(Dispatcher::takes(&b, &d.agents, "echo"), Takes::Unlimited);
    assert_eq!(Dispatcher::takes(&b, &d.agents, "summarize"), Takes::No);
    assert_eq!(
        Dispatcher::takes(&r, &d.agents, "summarize"),
        Takes::Limited
    );
    assert_eq!(Dispatcher::takes(&r, &d.agents, "scrape"), Takes::Unlimited);
    // A remote worker may declare a name that is a built-in agent: it serves it too.
    assert_eq!(Dispatcher::takes(&r, &d.agents, "echo"), Takes::Unlimited);
    assert_eq!(Dispatcher::takes(&r, &d.agents, "sleep"), Takes::No);
    assert_eq!(Dispatcher::takes(&b, &d.agents, "no-such-agent"), Takes::No);
}

#[tokio::test(flavor = "current_thread")]
async fn reservations_spread_over_consumers_and_give_back_what_they_do_not_deliver() {
    let f = fixture().await;
    let d = &f.dispatcher;
    let first = d.register(builtin(3));
    let second = d.register(builtin(3));
    let held = d.reserve("echo", 5).await;
    assert_eq!(held.iter().map(Reservation::slots).sum::<u32>(), 5);
    assert_eq!(first.in_use() + second.in_use(), 5);
    assert!(first.in_use() <= 3 && second.in_use() <= 3);
    // Nothing left beyond the free slots.
    let more = d.reserve("echo", 5).await;
    assert_eq!(more.iter().map(Reservation::slots).sum::<u32>(), 1);
    drop(more);
    drop(held);
    assert_eq!(first.in_use() + second.in_use(), 0, "unused slots go back");
}

#[tokio::test(flavor = "current_thread")]
async fn no_reservation_overtakes_queued_work_a_limit_or_a_draining_consumer() {
    let f = fixture().await;
    let d = &f.dispatcher;
    let worker = d.register(remote(8, &["summarize", "scrape"]));
    // A concurrency limit is only enforced by a claim.
    assert!(d.reserve("summarize", 1).await.is_empty());
    // Tasks this process queued must be claimed before anything skips the queue.
    d.mark_queued(["scrape".to_owned()]);
    assert!(d.reserve("scrape", 1).await.is_empty());
    d.dirty.lock().clear();
    assert_eq!(d.reserve("scrape", 1).await.len(), 1);
    worker.drain();
    assert!(
        d.reserve("scrape", 1).await.is_empty(),
        "a draining consumer takes nothing"
    );
    assert_eq!(worker.in_use(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_delivered_reservation_holds_its_slots_until_released() {
    let f = fixture().await;
    let d = &f.dispatcher;
    let mut worker = d.register(builtin(4));
    let mut held = d.reserve("echo", 2).await;
    assert_eq!(held.len(), 1);
    let reservation = held.pop().unwrap();
    let now = Timestamp::now();
    let claimed: Vec<ClaimedTask> = (0..2)
        .map(|i| ClaimedTask {
            id: switchyard_core::TaskId::new(),
            agent: "echo".into(),
            input: serde_json::json!({"i": i}),
            priority: 0,
            attempt: 1,
            attempts_in_run: 1,
            seq: 2,
            owner_id: None,
            parent_id: None,
            trace_id: None,
            created_at: now,
            run_at: now,
            claimed_at: now,
            fair_key: "u:".into(),
        })
        .collect();
    reservation.deliver(claimed);
    assert_eq!(worker.rx.recv().await.unwrap().len(), 2);
    assert_eq!(worker.in_use(), 2, "delivered slots stay taken");
    worker.releaser().release(1);
    worker.release(1);
    assert_eq!(worker.in_use(), 0);
    worker.release(5);
    assert_eq!(worker.in_use(), 0, "releasing never underflows");
}

#[tokio::test(flavor = "current_thread")]
async fn a_round_claims_within_free_slots_and_the_agent_limit() {
    let f = fixture().await;
    let d = &f.dispatcher;
    let now = Timestamp::now();
    insert(
        &f.store,
        (0..5).map(|_| new_task("summarize", 0, now)).collect(),
    )
    .await;
    insert(
        &f.store,
        (0..5).map(|_| new_task("scrape", 0, now)).collect(),
    )
    .await;
    let mut worker = d.register(remote(6, &["summarize", "scrape"]));
    let outcome = d.round().await;
    let got = worker.rx.recv().await.unwrap();
    let of = |agent: &str| got.iter().filter(|t| t.agent == agent).count();
    // Six free slots shared by two agents; `summarize` stops at its limit of 2.
    assert_eq!(of("summarize"), 2, "{got:?}");
    assert_eq!(of("scrape"), 3, "{got:?}");
    assert_eq!(worker.in_use(), 5);
    assert!(outcome.more, "a full claim means more may be waiting");
    assert!(got.iter().all(|t| t.attempt == 1));
    // Nothing more of `summarize` until one of its two finishes.
    worker.release(5);
    d.mark_ready(["summarize".to_owned(), "scrape".to_owned()]);
    d.round().await;
    let next = worker.rx.recv().await.unwrap();
    assert!(next.iter().all(|t| t.agent == "scrape"), "{next:?}");
    assert_eq!(next.len(), 2);
}

/// An agent-wide rate limit lets direct claims take as many starts as it allows now; a
/// per-key one (like a concurrency limit) leaves every start to claims.
#[tokio::test(flavor = "current_thread")]
async fn rate_limited_reservations_take_only_the_starts_allowed() {
    let f = fixture().await;
    let d = &f.dispatcher;
    let mut paced = AgentSpec::new("paced", AgentKind::Remote);
    paced.rate_limit = Some(switchyard_core::flow::RateLimit {
        limit: 1,
        period_s: 60,
        key: None,
    });
    let mut per_key = paced.clone();
    per_key.name = "per-key".into();
    per_key.rate_limit.as_mut().unwrap().key = Some("/k".into());
    d.agents.install(paced).await.unwrap();
    d.agents.install(per_key).await.unwrap();
    let worker = d.register(remote(8, &["paced", "per-key"]));
    let w = state_of(d, worker.worker_id());
    assert_eq!(Dispatcher::takes(&w, &d.agents, "paced"), Takes::Paced);
    assert_eq!(Dispatcher::takes(&w, &d.agents, "per-key"), Takes::Limited);
    let held = d.reserve("paced", 5).await;
    assert_eq!(
        held.iter().map(Reservation::slots).sum::<u32>(),
        1,
        "one start a minute"
    );
    assert!(
        d.reserve("paced", 5).await.is_empty(),
        "the next start is a minute away"
    );
    assert!(d.reserve("per-key", 1).await.is_empty());
}
