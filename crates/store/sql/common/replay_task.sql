UPDATE tasks
SET status = 'queued', run_at = $2, updated_at = $2, error = NULL, output = NULL, cached = false,
    finished_at = NULL, attempt_base = attempt, cancel_requested_at = NULL, fallback_task_id = NULL,
    seq = CASE WHEN numbered > seq THEN numbered ELSE seq END + 1
WHERE id = $1 AND status IN ('dead', 'failed', 'cancelled')
RETURNING id, agent, owner_id, status, seq, attempt, run_at, updated_at
