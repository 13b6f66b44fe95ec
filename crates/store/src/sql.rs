//! SQL text: the `.sql` files of `sql/{common,sqlite,postgres}` and the pieces of
//! statements that are assembled from them.

/// Path of an SQL file: `sql!("common", "get_task")`.
macro_rules! sql {
    ($dialect:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sql/",
            $dialect,
            "/",
            $name,
            ".sql"
        ))
    };
}
pub(crate) use sql;

/// `insert_tasks` where an idempotency key (or a reused id) may match an existing task:
/// those rows are skipped, and the ids actually inserted come back.
macro_rules! insert_or_skip {
    ($dialect:literal) => {
        concat!(
            crate::sql::sql!($dialect, "insert_tasks"),
            "ON CONFLICT DO NOTHING\nRETURNING id"
        )
    };
}
pub(crate) use insert_or_skip;

/// The task columns every task query selects, in `get_task.sql` order.
macro_rules! task_columns {
    () => {
        "id, agent, status, priority, input, output, error, cached, owner_id, idempotency_key, \
         run_at, created_at, updated_at, started_at, finished_at, attempt, worker_id, worker_name, \
         cancel_requested_at, seq, parent_id, fallback_of, fallback_task_id, trace_id, wait, \
         flow_key, schedule, scheduled_for"
    };
}
pub(crate) use task_columns;
