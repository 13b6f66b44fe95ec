-- $1: JSON array of completions, at most one per task.
UPDATE tasks
SET status = c.value ->> 'status',
    output = c.value -> 'output',
    error = c.value -> 'error',
    run_at = coalesce(c.value ->> 'run_at', tasks.run_at),
    finished_at = c.value ->> 'finished_at',
    updated_at = c.value ->> 'at',
    fallback_task_id = unhex(c.value ->> 'fallback_task_id'),
    worker_id = NULL,
    lease_expires_at = NULL,
    cancel_requested_at = NULL,
    seq = tasks.seq + 1
FROM jsonb_each($1) AS c
WHERE tasks.id = unhex(c.value ->> 'id')
  AND tasks.attempt = c.value ->> 'attempt'
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.agent, tasks.owner_id, tasks.status, tasks.seq, tasks.attempt,
          tasks.run_at, tasks.updated_at
