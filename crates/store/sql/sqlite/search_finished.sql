-- Indexed tasks that were not finished then and are now: to re-index with their results.
SELECT t.id, t.agent, t.status, t.input, t.output, t.error
FROM task_search_docs AS d
JOIN tasks AS t ON t.id = d.task_id
WHERE d.complete = 0 AND t.status IN ('succeeded', 'failed', 'dead', 'cancelled')
LIMIT $1
