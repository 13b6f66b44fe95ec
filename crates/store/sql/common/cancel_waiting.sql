UPDATE tasks
SET status = 'cancelled', finished_at = $2, updated_at = $2, seq = seq + 1, error = $3
WHERE id = $1 AND status IN ('queued', 'retrying')
RETURNING id, agent, owner_id, status, seq, attempt, run_at, updated_at
