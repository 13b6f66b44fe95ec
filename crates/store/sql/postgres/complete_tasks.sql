-- $1: JSON array of completions, at most one per task.
UPDATE tasks
SET status = c.value ->> 'status',
    output = c.value -> 'output',
    error = c.value -> 'error',
    run_at = coalesce((c.value ->> 'run_at')::bigint, tasks.run_at),
    finished_at = (c.value ->> 'finished_at')::bigint,
    updated_at = (c.value ->> 'at')::bigint,
    fallback_task_id = (c.value ->> 'fallback_task_id')::uuid,
    worker_id = NULL,
    lease_expires_at = NULL,
    cancel_requested_at = NULL,
    seq = tasks.seq + 1
FROM jsonb_array_elements($1::jsonb) AS c(value)
WHERE tasks.id = (c.value ->> 'id')::uuid
  AND tasks.attempt = (c.value ->> 'attempt')::bigint
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.agent, tasks.owner_id, tasks.status, tasks.seq, tasks.attempt,
          tasks.run_at, tasks.updated_at
