-- $1: JSON array of {id, m, s}: per task, the newest seq among events being stored and
-- how many of them are stream events (progress, partial output), which the task counts.
-- The task's `seq` (what its snapshot reports) moves up to the newest event stored.
UPDATE tasks
SET seq = GREATEST(tasks.seq, c.m),
    streamed = tasks.streamed + c.s
FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, m bigint, s bigint)
WHERE tasks.id = c.id
RETURNING tasks.id, tasks.streamed
