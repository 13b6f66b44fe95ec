-- $1: JSON array of {id, m, s}: per task, the newest seq among events being stored and
-- how many of them are stream events (progress, partial output), which the task counts.
-- The task's `seq` (what its snapshot reports) moves up to the newest event stored.
UPDATE tasks
SET seq = max(tasks.seq, c.value ->> 'm'),
    streamed = tasks.streamed + (c.value ->> 's')
FROM jsonb_each($1) AS c
WHERE tasks.id = unhex(c.value ->> 'id')
RETURNING tasks.id, tasks.streamed
