SELECT task_id, seq, attempt, at, level, message
FROM task_logs
WHERE task_id = $1 AND seq > $2
ORDER BY seq
LIMIT $3
