-- The task waits: no worker, no lease; the run does not count as an attempt of the run
-- of attempts that `max_attempts` limits (attempt_base moves with it).
UPDATE tasks
SET status = 'waiting', wait = $2, wait_kind = $3, run_at = $4, updated_at = $5,
    attempt_base = attempt_base + 1, worker_id = NULL, worker_name = NULL,
    lease_expires_at = NULL, cancel_requested_at = NULL, seq = CASE WHEN numbered > seq THEN numbered ELSE seq END + 1
WHERE id = $1
RETURNING seq
