-- Rows of `s` (6 bound parameters each; see `values.rs`): task id (16-byte blob), n, seq,
-- attempt, at, body (JSON text): stream events of running attempts. Rows whose task id is
-- NULL pad the statement to its shape and are skipped.
-- `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: the same for the primary key (an event
-- already stored is skipped), but with every constraint resolved by IGNORE no row can abort
-- the statement, so SQLite keeps no statement journal for it (8 % of the server's CPU while
-- streaming, docs/performance.md).
WITH s(task_id, n, seq, attempt, at, body) AS (VALUES {rows})
INSERT OR IGNORE INTO task_stream (task_id, n, seq, attempt, at, body)
SELECT task_id, n, seq, attempt, at, body FROM s WHERE task_id IS NOT NULL
