-- Indexed tasks that were not finished then and are now: to re-index with their results.
-- Walks the partial index of incomplete documents and looks each task up by key (the
-- OFFSET 0 keeps the planner from turning this into a hash join over all of `tasks`,
-- which it picks while the table's statistics still describe a much smaller table).
SELECT t.id, t.agent, t.status, t.input, t.output, t.error
FROM task_search AS s
CROSS JOIN LATERAL (
    SELECT id, agent, status, input, output, error
    FROM tasks
    WHERE tasks.id = s.task_id AND tasks.status IN ('succeeded', 'failed', 'dead', 'cancelled')
    OFFSET 0) AS t
WHERE NOT s.complete
ORDER BY s.task_id
LIMIT $1
