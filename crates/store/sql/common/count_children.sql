SELECT count(*) AS n FROM tasks WHERE parent_id = $1
