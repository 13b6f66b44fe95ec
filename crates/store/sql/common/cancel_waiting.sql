UPDATE tasks
SET status = 'cancelled', finished_at = $2, updated_at = $2, seq = CASE WHEN numbered > seq THEN numbered ELSE seq END + 1, error = $3,
    wait = NULL, wait_kind = NULL
WHERE id = $1 AND status IN ('queued', 'retrying', 'waiting')
RETURNING id, agent, owner_id, status, seq, attempt, run_at, updated_at
