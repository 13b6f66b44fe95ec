-- Log lines of a batch of tasks ($1: JSON array of 32-digit hex ids), for the search index.
SELECT task_id, message
FROM task_logs
WHERE task_id IN (SELECT unhex(value) FROM json_each($1))
ORDER BY task_id, seq
