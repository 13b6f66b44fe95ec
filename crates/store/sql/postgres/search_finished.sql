-- Indexed tasks that were not finished then and are now: to re-index with their results.
SELECT t.id, t.agent, t.status, t.input, t.output, t.error
FROM task_search AS s
JOIN tasks AS t ON t.id = s.task_id
WHERE NOT s.complete AND t.status IN ('succeeded', 'failed', 'dead', 'cancelled')
LIMIT $1
