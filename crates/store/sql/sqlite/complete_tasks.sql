-- Rows of `c` (10 bound parameters each; see `values.rs`), at most one
-- per task: id (16-byte blob)  attempt  at  status  attempt_status  finished_at
--   output (JSON or NULL)  error (JSON or NULL)  run_at (retries)  fallback_task_id
-- Rows whose id is NULL pad the statement to its shape and match nothing.
WITH c(id, attempt, at, status, attempt_status, finished_at, output, error, run_at,
       fallback_task_id) AS (VALUES {rows})
UPDATE tasks
SET status = c.status,
    output = c.output,
    error = c.error,
    run_at = coalesce(c.run_at, tasks.run_at),
    finished_at = c.finished_at,
    updated_at = c.at,
    fallback_task_id = c.fallback_task_id,
    lease_expires_at = NULL,
    cancel_requested_at = NULL,
    seq = max(tasks.seq, tasks.numbered) + 1
FROM c
WHERE tasks.id = c.id
  AND tasks.attempt = c.attempt
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.agent, tasks.owner_id, tasks.status, tasks.seq, tasks.attempt,
          tasks.run_at, tasks.updated_at
