-- $1: JSON array of completions. Only attempts that still hold their lease are recorded.
INSERT INTO task_attempts (task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error)
SELECT t.id, t.attempt, t.worker_id, t.worker_name, coalesce(t.started_at, c.value ->> 'at'),
       c.value ->> 'at', c.value ->> 'attempt_status', c.value -> 'error'
FROM jsonb_each($1) AS c
JOIN tasks AS t ON t.id = unhex(c.value ->> 'id')
WHERE t.attempt = c.value ->> 'attempt' AND t.status = 'running'
ON CONFLICT DO NOTHING
