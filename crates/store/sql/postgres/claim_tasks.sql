-- Each fair key's share of a claim ($6: JSON [{"key", "priority", "quota"}]): its oldest
-- runnable tasks at one priority level (tasks_fair). Concurrent claimers skip each
-- other's locked rows instead of queueing behind them.
WITH picked AS (
    SELECT p.id
    FROM jsonb_to_recordset($6::jsonb) AS q(key text, priority int, quota int)
    CROSS JOIN LATERAL (
        SELECT id FROM tasks
        WHERE agent = $5 AND status IN ('queued', 'retrying') AND priority = q.priority
          AND fair_key = q.key AND run_at <= $4
        ORDER BY id
        LIMIT q.quota
        FOR UPDATE SKIP LOCKED) AS p)
UPDATE tasks
SET status = 'running', attempt = tasks.attempt + 1, worker_id = $1, worker_name = $2,
    lease_expires_at = $3, started_at = $4, updated_at = $4, seq = GREATEST(tasks.seq, tasks.numbered) + 1
FROM picked
WHERE tasks.id = picked.id
RETURNING tasks.id, tasks.agent, tasks.input, tasks.priority, tasks.attempt,
          tasks.attempt - tasks.attempt_base AS attempts_in_run, tasks.seq,
          tasks.owner_id, tasks.parent_id, tasks.trace_id, tasks.created_at, tasks.run_at,
          tasks.started_at, tasks.fair_key
