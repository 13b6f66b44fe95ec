SELECT id FROM tasks
WHERE schedule = $1 AND status IN ('queued', 'retrying', 'running', 'waiting')
