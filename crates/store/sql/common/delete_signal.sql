DELETE FROM task_signals WHERE task_id = $1 AND id = $2
