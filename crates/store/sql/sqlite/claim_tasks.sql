-- One fair key's share of a claim: its oldest runnable tasks at one priority level
-- (tasks_fair). $6 is the share, $7 the priority level, $8 the fair key.
UPDATE tasks
SET status = 'running', attempt = attempt + 1, worker_id = $1, worker_name = $2,
    lease_expires_at = $3, started_at = $4, updated_at = $4, seq = seq + 1
WHERE id IN (
    SELECT id FROM tasks
    WHERE agent = $5 AND status IN ('queued', 'retrying') AND priority = $7 AND fair_key = $8
      AND run_at <= $4
    ORDER BY id
    LIMIT $6)
RETURNING id, agent, input, priority, attempt, attempt - attempt_base AS attempts_in_run, seq,
          owner_id, parent_id, trace_id, created_at, run_at, started_at, fair_key
