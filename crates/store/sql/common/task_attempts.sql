SELECT task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error
FROM task_attempts
WHERE task_id = $1
ORDER BY attempt
