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
/// tasks); sorting the queue to group it held the backlog in memory (the server grew by
/// 200 MB at 3,000,000 queued tasks).
#[tokio::test]
async fn queue_stats_read_the_queue_not_the_history() {
    use sqlx::Connection;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let at = switchyard_store::conformance::queue_beside_history(
        &(Arc::new(store) as SharedStore),
        5_000,
    )
    .await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let sql = include_str!("../sql/common/queue_stats.sql").replace("$1", &at.millis().to_string());
    let plan = query_plan(&mut conn, &sql).await;
    let reads: Vec<&String> = plan.iter().filter(|l| l.contains(" tasks")).collect();
    assert_eq!(reads.len(), 2, "{plan:#?}");
    for line in reads {
        assert!(
            ["tasks_fair", "tasks_waiting_run_at", "tasks_running"]
                .iter()
                .any(|index| line.contains(&format!("INDEX {index}"))),
            "reads tasks without the queue's or the running set's index: {plan:#?}"
        );
    }
    // The queue is grouped as it is read, in agent order: the one sort left is the final
    // grouping's, over a row per agent and the running set. Sorting the queue itself held
    // the whole backlog in memory on every gauge sample.
    assert!(
        plan.iter().any(|l| l.contains("INDEX tasks_fair")),
        "the queue is not read in agent order: {plan:#?}"
    );
    let sorts = plan.iter().filter(|l| l.contains("TEMP B-TREE")).count();
    assert_eq!(sorts, 1, "{plan:#?}");
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

/// Every column of the migrated schema is in backups (or its table is derived state).
#[tokio::test]
async fn backups_hold_every_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db"), Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let gaps = store.backup_catalogue_gaps().await.unwrap();
    assert!(gaps.is_empty(), "{gaps:#?}");
}

/// Audit entries cannot be changed, even by a connection that bypasses the store; the
/// retention prune still deletes.
#[tokio::test]
async fn audit_entries_refuse_updates() {
    use sqlx::Connection;
    use switchyard_core::Timestamp;
    use switchyard_core::audit::{Actor, AuditAction, AuditEntry, AuditStore};

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let entry = AuditEntry::new(Actor::cli(), AuditAction::UserCreate);
    store.insert_audit(&entry).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    let refused = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&mut conn)
        .await
        .expect_err("an update is refused");
    assert!(
        refused.to_string().contains("cannot be changed"),
        "{refused}"
    );
    drop(conn);
    let later = Timestamp::now().plus_ms(1_000);
    assert_eq!(store.prune_audit(later).await.unwrap(), 1);
}
