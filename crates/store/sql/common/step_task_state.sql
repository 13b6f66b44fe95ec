SELECT status, attempt FROM tasks WHERE id = $1
