-- The oldest signal named $2 kept for the task.
SELECT id, payload FROM task_signals WHERE task_id = $1 AND name = $2 ORDER BY id LIMIT 1
