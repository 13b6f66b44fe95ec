-- Concurrent claimers skip each other's locked rows instead of queueing behind them.
WITH picked AS (
    SELECT id FROM tasks
    WHERE agent = $5 AND status IN ('queued', 'retrying') AND run_at <= $4
    ORDER BY priority DESC, id
    LIMIT $6
    FOR UPDATE SKIP LOCKED)
UPDATE tasks
SET status = 'running', attempt = tasks.attempt + 1, worker_id = $1, worker_name = $2,
    lease_expires_at = $3, started_at = $4, updated_at = $4, seq = tasks.seq + 1
FROM picked
WHERE tasks.id = picked.id
RETURNING tasks.id, tasks.agent, tasks.input, tasks.priority, tasks.attempt,
          tasks.attempt - tasks.attempt_base AS attempts_in_run, tasks.seq,
          tasks.owner_id, tasks.parent_id, tasks.trace_id, tasks.created_at, tasks.run_at,
          tasks.started_at
