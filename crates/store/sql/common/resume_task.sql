-- A waiting task is queued again; $3 events (the wait's step, `resumed`, ...) are numbered.
UPDATE tasks
SET status = 'queued', wait = NULL, wait_kind = NULL, run_at = $2, updated_at = $2,
    seq = CASE WHEN numbered > seq THEN numbered ELSE seq END + $3
WHERE id = $1 AND status = 'waiting'
RETURNING agent, owner_id, seq
