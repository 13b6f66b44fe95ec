SELECT count(*) FROM tasks WHERE agent = $1 AND status = 'running'
