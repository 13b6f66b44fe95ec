-- The running attempt of task $1 ends in a wait (before `suspend_task` clears its worker).
INSERT INTO task_attempts (task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error)
SELECT id, attempt, worker_id, worker_name, coalesce(started_at, $2), $2, 'suspended', NULL
FROM tasks WHERE id = $1
ON CONFLICT DO NOTHING
