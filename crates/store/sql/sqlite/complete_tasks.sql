-- $1: JSON array of completions, at most one per task, each an array (positions):
--   0 id  1 attempt  2 at  3 status  4 attempt_status  5 finished_at  6 [output] or []
--   7 [error] or []  8 run_at (retries)  9 fallback_task_id
UPDATE tasks
SET status = c.value ->> 3,
    output = c.value -> 6 -> 0,
    error = c.value -> 7 -> 0,
    run_at = coalesce(c.value ->> 8, tasks.run_at),
    finished_at = c.value ->> 5,
    updated_at = c.value ->> 2,
    fallback_task_id = unhex(c.value ->> 9),
    lease_expires_at = NULL,
    cancel_requested_at = NULL,
    seq = tasks.seq + 1
FROM jsonb_each($1) AS c
WHERE tasks.id = unhex(c.value ->> 0)
  AND tasks.attempt = c.value ->> 1
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.agent, tasks.owner_id, tasks.status, tasks.seq, tasks.attempt,
          tasks.run_at, tasks.updated_at
