//! The storage conformance suite on PostgreSQL, plus the PostgreSQL cluster services
//! (LISTEN/NOTIFY bus, advisory-lock leadership).
//!
//! Runs against `TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`);
//! without it every test prints loudly that it was skipped. Each test gets a fresh schema
//! (`search_path` on every pooled connection), so tests run in parallel in one database;
//! schemas left by earlier runs are dropped when they are older than a few minutes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use switchyard_core::cache::EventBus;
use switchyard_core::event::{BusMessage, EventBody, TaskEvent};
use switchyard_core::store::{Leadership, Store};
use switchyard_core::task::TaskStatus;
use switchyard_core::{TaskId, Timestamp};
use switchyard_store::conformance::SharedStore;
use switchyard_store::{PgBus, PgLeadership, PgSettings, PgStore};

const SCHEMA_PREFIX: &str = "sy_conf_";
/// Schemas of earlier runs older than this are dropped.
const STALE_AFTER_S: u64 = 600;

fn database_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED: TEST_DATABASE_URL not set — PostgreSQL conformance suite did not run"
            );
            None
        }
    }
}

async fn fresh_schema(url: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let name = format!("{SCHEMA_PREFIX}{now}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'sy\\_conf\\_%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list schemas");
    for old in schemas {
        let created = old
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        if created.is_some_and(|t| t + STALE_AFTER_S < now) {
            // Names are generated here (prefix, digits, hex), never from input.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{old}\" CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("create schema");
    name
}

async fn pg_store_in_fresh_schema() -> Option<Arc<PgStore>> {
    let url = database_url()?;
    let schema = fresh_schema(&url).await;
    let mut settings = PgSettings::new(url);
    settings.schema = Some(schema);
    settings.max_connections = 8;
    let store = PgStore::connect(settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some(Arc::new(store))
}

async fn pg_store() -> Option<SharedStore> {
    pg_store_in_fresh_schema().await.map(|s| s as SharedStore)
}

switchyard_store::conformance_tests!(pg_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent() {
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    store.migrate().await.expect("migrating twice is a no-op");
    store.ping().await.expect("ping");
    assert_eq!(store.backend(), "postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_leader_and_failover() {
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    // A key of this test's own, so parallel runs do not contend with each other.
    let key = i64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap());
    let a = PgLeadership::with_key(&store, key).unwrap();
    let b = PgLeadership::with_key(&store, key).unwrap();
    assert!(a.check().await, "the first contender leads");
    assert!(!b.check().await, "the second does not");
    assert!(a.check().await, "the leader keeps leading");
    assert!(!b.check().await);
    // The leader's process dies: its session ends and the lock is free.
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !b.check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lock was taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = PgLeadership::with_key(&store, key).unwrap();
    assert!(!c.check().await);
    b.release().await;
    assert!(c.check().await, "a released lock is free at once");
    c.release().await;
}

fn event(task: TaskId, seq: u64, text: &str) -> TaskEvent {
    TaskEvent {
        task_id: task,
        seq,
        agent: "echo".into(),
        owner_id: None,
        at: Timestamp::now(),
        body: EventBody::Result {
            status: TaskStatus::Succeeded,
            attempt: 1,
            output: serde_json::json!({ "text": text }),
            cached: false,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_bus_delivers_small_and_large_messages_in_order() {
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    let channel = format!("sy_test_{}", uuid::Uuid::new_v4().simple());
    let publisher = PgBus::start(&store, &channel).unwrap();
    let other_process = PgBus::start(&store, &channel).unwrap();
    let mut mine = publisher.subscribe();
    let mut theirs = other_process.subscribe();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let task = TaskId::new();
    let big = "x".repeat(20_000);
    let events: Vec<Arc<TaskEvent>> = (1..=40)
        .map(|i| Arc::new(event(task, i, if i == 7 { &big } else { "small" })))
        .collect();
    publisher
        .publish(Arc::new(BusMessage::Wake {
            agents: vec!["echo".into()],
        }))
        .await
        .unwrap();
    publisher
        .publish(Arc::new(BusMessage::Tasks {
            events: events.clone(),
        }))
        .await
        .unwrap();
    for rx in [&mut mine, &mut theirs] {
        let received = tokio::time::timeout(Duration::from_secs(20), async {
            let mut got = Vec::new();
            let mut woke = false;
            while got.len() < events.len() {
                match &*rx.recv().await.expect("bus open") {
                    BusMessage::Wake { agents } => {
                        assert_eq!(agents, &vec!["echo".to_owned()]);
                        woke = true;
                    }
                    BusMessage::Tasks { events } => got.extend(events.iter().cloned()),
                    _ => {}
                }
            }
            assert!(woke, "the wake-up arrived before the events");
            got
        })
        .await
        .expect("every message arrives");
        assert_eq!(
            received, events,
            "all events, in order, the large one included"
        );
    }
}

/// A worker's heartbeat must not wait for a row another transaction holds (a completion
/// finishing that task): waiting there deadlocked with completion batches that waited in
/// turn for a row the heartbeat had already locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_extension_skips_rows_held_by_other_transactions() {
    use switchyard_core::store::TaskStore;
    use switchyard_store::conformance::{claim, insert, new_task, t0};
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    let shared: SharedStore = store.clone();
    let tasks: Vec<_> = (0..3).map(|_| new_task("held", 0, t0())).collect();
    insert(&shared, tasks).await;
    let worker = switchyard_core::WorkerId::new();
    let claimed = claim(&shared, worker, t0(), "held", 3).await;
    assert_eq!(claimed.len(), 3);

    let url = std::env::var("TEST_DATABASE_URL").expect("set: the store connected");
    let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
    let schema = store.settings().schema.clone().expect("a test schema");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO \"{schema}\""
    )))
    .execute(&mut other)
    .await
    .expect("search_path");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query("SELECT id FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(claimed[0].id.0)
        .execute(&mut *tx)
        .await
        .expect("hold one row");

    let until = t0().plus_ms(3_600_000);
    let extended =
        tokio::time::timeout(Duration::from_secs(20), store.extend_leases(worker, until))
            .await
            .expect("the heartbeat did not wait for the held row")
            .expect("extend leases");
    assert_eq!(
        extended, 2,
        "the two free rows are extended, the held one skipped"
    );
    tx.rollback().await.expect("rollback");
    assert_eq!(store.extend_leases(worker, until).await.expect("extend"), 3);
}

/// A store on a database of its own, so that a test can end every connection it has.
struct OwnDatabase {
    admin: sqlx::PgConnection,
    name: String,
    store: PgStore,
}

impl OwnDatabase {
    async fn create(url: &str, label: &str) -> Self {
        let name = format!("sy_{label}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(url).await.expect("connect");
        // Generated here (prefix and hex digits), never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let (base, _) = url.rsplit_once('/').expect("a database URL");
        let store = PgStore::connect(PgSettings::new(format!("{base}/{name}")))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        OwnDatabase { admin, name, store }
    }

    /// Ends every server process of the store's connections, as a restart would.
    async fn end_connections(&mut self) {
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        )
        .bind(&self.name)
        .fetch_all(&mut self.admin)
        .await
        .expect("terminate");
        assert!(!ended.is_empty(), "the store's connections were found");
    }

    async fn drop(mut self) {
        self.store.close().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await;
    }
}

/// Connections in steady use are not pinged before each statement (a round trip each):
/// when the server closes them, the next calls fail as `unavailable` — which callers
/// retry — and the pool replaces them; nothing fails otherwise. Runs in a database of its
/// own, whose every connection this test can end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_replaces_connections_the_server_closed() {
    use switchyard_core::ErrorCode;
    use switchyard_core::store::TaskStore;
    use switchyard_store::conformance::{new_task, t0};
    let Some(url) = database_url() else {
        return;
    };
    let mut db = OwnDatabase::create(&url, "pool").await;
    db.store
        .insert_tasks(vec![new_task("pool", 0, t0())], Timestamp::EPOCH)
        .await
        .expect("insert before");
    db.end_connections().await;

    let mut failed = 0;
    let recovered = loop {
        match db
            .store
            .insert_tasks(vec![new_task("pool", 0, t0())], Timestamp::EPOCH)
            .await
        {
            Ok(_) => break true,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::Unavailable, "{e}");
                failed += 1;
                if failed > 32 {
                    break false;
                }
            }
        }
    };
    assert!(recovered, "the pool never replaced its closed connections");
    db.drop().await;
}

/// The submit loop's and the completion loop's statements run on connections they keep
/// between statements. Like pooled ones, those are checked after sitting idle: a server
/// restart while the system was quiet costs no failed submission or completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_that_sat_idle_are_checked_before_use() {
    use switchyard_core::WorkerId;
    use switchyard_core::store::{ClaimRequest, Completion, Outcome, TaskStore};
    use switchyard_store::conformance::{new_task, t0};
    let Some(url) = database_url() else {
        return;
    };
    let mut db = OwnDatabase::create(&url, "kept").await;
    let store = &db.store;
    let tasks = [new_task("kept", 0, t0()), new_task("kept", 0, t0())];
    store
        .insert_tasks(tasks.to_vec(), Timestamp::EPOCH)
        .await
        .expect("insert");
    let claimed = store
        .claim_tasks(&ClaimRequest {
            worker_id: WorkerId::new(),
            worker_name: "kept".into(),
            lease_ms: 60_000,
            now: t0(),
            demands: vec![switchyard_core::store::AgentDemand {
                agent: "kept".into(),
                max: 2,
                ..Default::default()
            }],
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    let complete = |i: usize| {
        [Completion {
            task_id: claimed[i].id,
            attempt: claimed[i].attempt,
            at: t0().plus_ms(1),
            outcome: Outcome::Succeeded {
                output: serde_json::json!(i),
            },
        }]
    };
    store.complete_tasks(&complete(0)).await.expect("complete");

    db.end_connections().await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let store = &db.store;
    store
        .insert_tasks(vec![new_task("kept", 0, t0())], Timestamp::EPOCH)
        .await
        .expect("the first submission after the restart succeeds");
    let done = store
        .complete_tasks(&complete(1))
        .await
        .expect("the first completion after the restart succeeds");
    assert_eq!(done.transitions.len(), 1);
    assert_eq!(done.transitions[0].status, TaskStatus::Succeeded);
    db.drop().await;
}

/// The task path's statements are prepared once per connection, usually while `tasks` is
/// nearly empty, and PostgreSQL keeps the generic plan it made then. On the task path's
/// connections that plan must still be fit once the table has grown and its running-task
/// index has held thousands of finished tasks: no sequential scan of `tasks`, no bitmap
/// scan (which leaves dead index entries in place), nothing quadratic in the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_path_plans_stay_fit_as_the_table_grows() {
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    let options = store.settings().task_path_options().expect("options");
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connect");
    for (name, sql) in [
        (
            "complete_p(jsonb)",
            include_str!("../sql/postgres/complete_tasks.sql"),
        ),
        (
            "claim_p(uuid, text, bigint, bigint, text, jsonb)",
            include_str!("../sql/postgres/claim_tasks.sql"),
        ),
        (
            "keys_p(text, bigint, text, bigint, boolean)",
            include_str!("../sql/common/runnable_keys.sql"),
        ),
        (
            "numbers_p(jsonb)",
            include_str!("../sql/postgres/reserve_numbers.sql"),
        ),
        (
            "counts_p(jsonb)",
            include_str!("../sql/postgres/count_events.sql"),
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {name} AS {sql}")))
            .execute(&mut conn)
            .await
            .expect("prepare");
    }
    // `n` running tasks of agent `a`.
    async fn running(conn: &mut sqlx::PgConnection, n: i64) -> Vec<uuid::Uuid> {
        sqlx::query_scalar(
            "INSERT INTO tasks (id, agent, status, priority, input, run_at, created_at, \
             updated_at, attempt, worker_id, started_at) \
             SELECT gen_random_uuid(), 'a', 'running', 0, '{}', 0, 0, 0, 1, \
             gen_random_uuid(), 0 FROM generate_series(1, $1) RETURNING id",
        )
        .bind(n)
        .fetch_all(&mut *conn)
        .await
        .expect("insert running tasks")
    }
    // `n` more tasks with `status`, run by nobody.
    async fn add(conn: &mut sqlx::PgConnection, status: &str, n: i64) {
        sqlx::query(
            "INSERT INTO tasks (id, agent, status, priority, input, run_at, created_at, \
             updated_at) SELECT gen_random_uuid(), 'a', $1, 0, '{}', 0, 0, 0 \
             FROM generate_series(1, $2)",
        )
        .bind(status)
        .bind(n)
        .execute(&mut *conn)
        .await
        .expect("insert tasks");
    }
    // The statement completing `ids`.
    fn complete(ids: &[uuid::Uuid]) -> String {
        let batch = serde_json::Value::Array(
            ids.iter()
                .map(|id| {
                    serde_json::json!([
                        id.simple().to_string(),
                        1,
                        5,
                        "succeeded",
                        "succeeded",
                        5,
                        [null],
                        [],
                        null,
                        null
                    ])
                })
                .collect(),
        );
        format!("EXECUTE complete_p('{batch}')")
    }
    async fn run(conn: &mut sqlx::PgConnection, statement: String) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .expect("execute");
    }
    // More executions than PostgreSQL's five custom plans: the generic plan is made now,
    // on a table of a few thousand rows (where, left to itself, the planner picks a
    // bitmap scan of the running-task index; at a few rows, a plain one).
    add(&mut conn, "succeeded", 3_000).await;
    for _ in 0..8 {
        let ids = running(&mut conn, 1).await;
        let numbers = serde_json::json!([{"id": ids[0], "attempt": 1, "n": 2}]);
        run(&mut conn, format!("EXECUTE numbers_p('{numbers}')")).await;
        let counts = serde_json::json!([{"id": ids[0], "m": 2, "s": 1}]);
        run(&mut conn, format!("EXECUTE counts_p('{counts}')")).await;
        run(&mut conn, complete(&ids)).await;
        run(
            &mut conn,
            r#"EXECUTE claim_p(gen_random_uuid(), 'w', 9, 1, 'a', '[{"key": "u:", "priority": 0, "quota": 10}]')"#.into(),
        )
        .await;
    }
    // The table grows; each finished task leaves an entry in the running-task index.
    for _ in 0..10 {
        let ids = running(&mut conn, 2_000).await;
        run(&mut conn, complete(&ids)).await;
    }
    add(&mut conn, "queued", 5_000).await;

    let ids = running(&mut conn, 2_000).await;
    let numbers = serde_json::Value::Array(
        ids.iter()
            .map(|id| serde_json::json!({"id": id, "attempt": 1, "n": 1}))
            .collect(),
    );
    let counts = serde_json::Value::Array(
        ids.iter()
            .map(|id| serde_json::json!({"id": id, "m": 1, "s": 0}))
            .collect(),
    );
    let batch = ids.len() as u64;
    for statement in [
        format!("EXECUTE numbers_p('{numbers}')"),
        format!("EXECUTE counts_p('{counts}')"),
        complete(&ids),
        format!(
            r#"EXECUTE claim_p(gen_random_uuid(), 'w', 9, 1, 'a', '[{{"key": "u:", "priority": 0, "quota": {batch}}}]')"#
        ),
        "EXECUTE keys_p('a', 1, '', 64, true)".into(),
    ] {
        let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
        )))
        .fetch_one(&mut conn)
        .await
        .expect("explain");
        let text = plan.to_string();
        for bad in ["Seq Scan", "Bitmap"] {
            assert!(
                !text.contains(bad),
                "{statement:.40}: {bad} in the plan: {plan:#}"
            );
        }
        let mut removed = 0;
        sum_field(&plan, "Rows Removed by Join Filter", &mut removed);
        assert!(
            removed <= batch,
            "{statement:.40}: quadratic join: {plan:#}"
        );
        let mut done = 0;
        sum_field(&plan[0]["Plan"], "Actual Rows", &mut done);
        assert!(done > 0, "{statement:.40}: did nothing: {plan:#}");
    }
}

/// The queue gauges (sampled every rollup interval, and on every `/api/v1/queues` and
/// Prometheus scrape) read the queue and the running set through their partial indexes:
/// what they cost follows those sets, not the finished history. One condition covering
/// both sets matched neither index and read all of `tasks` (120 – 230 ms at 1,000,000
/// finished tasks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_stats_read_the_queue_not_the_history() {
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    let at = switchyard_store::conformance::queue_beside_history(
        &(store.clone() as SharedStore),
        20_000,
    )
    .await;
    let settings = store.settings();
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&settings.url)
        .expect("url")
        .options([("search_path", settings.schema.as_deref().expect("schema"))]);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connect");
    sqlx::query("ANALYZE tasks")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let sql = include_str!("../sql/common/queue_stats.sql").replace("$1", &at.millis().to_string());
    let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
    )))
    .fetch_one(&mut conn)
    .await
    .expect("explain");
    assert!(!plan.to_string().contains("Seq Scan"), "{plan:#}");
    let (mut read, mut removed) = (0, 0);
    sum_field(&plan, "Actual Rows", &mut read);
    sum_field(&plan, "Rows Removed by Filter", &mut removed);
    assert!(read + removed < 200, "read the history: {plan:#}");
}

/// Adds up `field` over every node of an `EXPLAIN (FORMAT JSON)` plan.
fn sum_field(node: &serde_json::Value, field: &str, total: &mut u64) {
    match node {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v.as_u64() {
                    Some(n) if k == field => *total += n,
                    _ => sum_field(v, field, total),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| sum_field(v, field, total)),
        _ => {}
    }
}

/// Every column of the migrated schema is in backups (or its table is derived state).
#[tokio::test]
async fn backups_hold_every_column() {
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    let gaps = store.backup_catalogue_gaps().await.unwrap();
    assert!(gaps.is_empty(), "{gaps:#?}");
}

/// Audit entries cannot be changed, even by a connection that bypasses the store; the
/// retention prune still deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_refuse_updates() {
    use switchyard_core::audit::{Actor, AuditAction, AuditEntry, AuditStore};
    let Some(store) = pg_store_in_fresh_schema().await else {
        return;
    };
    let url = database_url().expect("a database");
    let entry = AuditEntry::new(Actor::cli(), AuditAction::UserCreate);
    store.insert_audit(&entry).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let schema = store.settings().schema.clone().expect("a test schema");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO \"{schema}\""
    )))
    .execute(&mut conn)
    .await
    .expect("search_path");
    let refused = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&mut conn)
        .await
        .expect_err("an update is refused");
    assert!(
        refused.to_string().contains("cannot be changed"),
        "{refused}"
    );
    let later = Timestamp::now().plus_ms(1_000);
    assert_eq!(store.prune_audit(later).await.unwrap(), 1);
}
