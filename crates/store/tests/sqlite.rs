//! The storage conformance suite on the embedded SQLite backend.

use std::sync::Arc;

use switchyard_core::store::Store;
use switchyard_store::conformance::SharedStore;
use switchyard_store::{Durability, SqliteStore};

async fn sqlite_store() -> Option<SharedStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db"), Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    // The directory must outlive the store: leak it for the test's lifetime.
    std::mem::forget(dir);
    Some(Arc::new(store))
}

switchyard_store::conformance_tests!(sqlite_store);

/// The queue gauges (sampled every rollup interval, and on every `/api/v1/queues` and
/// Prometheus scrape) read the queue and the running set through their partial indexes:
/// what they cost follows those sets, not the finished history. One condition covering
/// both sets matched neither index and read all of `tasks` (3 s at 1,000,000 finished
/// tasks).
#[tokio::test]
async fn queue_stats_read_the_queue_not_the_history() {
    use sqlx::Connection;
    use switchyard_core::Timestamp;
    use switchyard_core::store::TaskStore;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    // 5,000 finished tasks, 30 waiting (run_at 1..=30), 7 running.
    for (status, n) in [("succeeded", 5_000), ("queued", 30), ("running", 7)] {
        sqlx::query(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $2) \
             INSERT INTO tasks (id, agent, status, priority, input, run_at, created_at, \
             updated_at) SELECT randomblob(16), 'a', $1, 0, '{}', \
             CASE WHEN $1 = 'queued' THEN n ELSE 0 END, 0, 0 FROM g",
        )
        .bind(status)
        .bind(n)
        .execute(&mut conn)
        .await
        .expect("insert tasks");
    }
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let stats = store.queue_stats(Timestamp::from_millis(10)).await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].ready, stats[0].scheduled, stats[0].running),
        (10, 20, 7)
    );
    assert_eq!(stats[0].oldest_ready_at, Some(Timestamp::from_millis(1)));

    let sql = include_str!("../sql/common/queue_stats.sql").replace("$1", "10");
    let plan = query_plan(&mut conn, &sql).await;
    let reads: Vec<&String> = plan.iter().filter(|l| l.contains(" tasks")).collect();
    assert_eq!(reads.len(), 2, "{plan:#?}");
    for line in reads {
        assert!(
            ["tasks_ready", "tasks_waiting_run_at", "tasks_running"]
                .iter()
                .any(|index| line.contains(&format!("INDEX {index}"))),
            "reads tasks without the queue's or the running set's index: {plan:#?}"
        );
    }
}

/// The steps of `EXPLAIN QUERY PLAN sql`.
async fn query_plan(conn: &mut sqlx::SqliteConnection, sql: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(conn)
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect()
}
