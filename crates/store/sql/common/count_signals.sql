SELECT count(*) AS n FROM task_signals WHERE task_id = $1
