SELECT status, attempt, output, error, started_at, finished_at FROM task_steps
WHERE task_id = $1 AND name = $2
