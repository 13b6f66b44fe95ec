UPDATE tasks SET lease_expires_at = $2
WHERE worker_id = $1 AND status = 'running'
