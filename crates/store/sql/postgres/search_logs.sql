-- Log lines of a batch of tasks ($1: JSON array of 32-digit hex ids), for the search index.
SELECT task_id, message
FROM task_logs
WHERE task_id IN (SELECT value::uuid FROM jsonb_array_elements_text($1::jsonb))
ORDER BY task_id, seq
