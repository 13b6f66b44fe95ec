-- $1: JSON array of {id, attempt, n, s}: n sequence numbers for each running attempt, s
-- of them for stream events (progress, partial output), which the task counts.
UPDATE tasks
SET seq = tasks.seq + (c.value ->> 'n'),
    streamed = tasks.streamed + (c.value ->> 's')
FROM jsonb_each($1) AS c
WHERE tasks.id = unhex(c.value ->> 'id')
  AND tasks.attempt = c.value ->> 'attempt'
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.attempt, tasks.seq, tasks.streamed, tasks.agent, tasks.owner_id
