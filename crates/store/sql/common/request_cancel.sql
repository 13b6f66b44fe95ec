UPDATE tasks
SET cancel_requested_at = coalesce(cancel_requested_at, $2), updated_at = $2
WHERE id = $1 AND status = 'running'
RETURNING worker_id, attempt
