-- Rows of `s` (6 bound parameters each; see `values.rs`): task id (16-byte blob), n, seq,
-- attempt, at, body (JSON text): stream events of running attempts. Rows whose task id is
-- NULL pad the statement to its shape and are skipped.
WITH s(task_id, n, seq, attempt, at, body) AS (VALUES {rows})
INSERT INTO task_stream (task_id, n, seq, attempt, at, body)
SELECT task_id, n, seq, attempt, at, body FROM s WHERE task_id IS NOT NULL
ON CONFLICT DO NOTHING
