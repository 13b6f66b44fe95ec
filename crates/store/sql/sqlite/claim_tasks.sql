-- Each fair key's share of a claim ($6: JSON [[key, priority, share], ...]): its oldest
-- runnable tasks at one priority level, found by walking tasks_fair from one to the
-- next (an index seek per task, whatever the keys' backlogs), all keys in one statement.
WITH RECURSIVE
q(key, priority, quota) AS (
    SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($6)),
picks(key, priority, quota, id, n) AS (
    SELECT q.key, q.priority, q.quota,
           (SELECT id FROM tasks
            WHERE agent = $5 AND status IN ('queued', 'retrying') AND priority = q.priority
              AND fair_key = q.key AND run_at <= $4
            ORDER BY id
            LIMIT 1), 1
    FROM q
    WHERE q.quota > 0
    UNION ALL
    SELECT key, priority, quota,
           (SELECT id FROM tasks
            WHERE agent = $5 AND status IN ('queued', 'retrying') AND priority = picks.priority
              AND fair_key = picks.key AND run_at <= $4 AND id > picks.id
            ORDER BY id
            LIMIT 1), n + 1
    FROM picks
    WHERE picks.id IS NOT NULL AND n < picks.quota)
UPDATE tasks
SET status = 'running', attempt = attempt + 1, worker_id = $1, worker_name = $2,
    lease_expires_at = $3, started_at = $4, updated_at = $4, seq = max(seq, numbered) + 1
WHERE id IN (SELECT id FROM picks WHERE id IS NOT NULL)
RETURNING id, agent, input, priority, attempt, attempt - attempt_base AS attempts_in_run, seq,
          owner_id, parent_id, trace_id, created_at, run_at, started_at, fair_key
