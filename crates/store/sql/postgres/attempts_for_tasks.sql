SELECT task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error
FROM task_attempts
WHERE task_id IN (SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb))
ORDER BY task_id, attempt
