SELECT name, output FROM task_steps WHERE task_id = $1 AND status = 'succeeded' ORDER BY ordinal
