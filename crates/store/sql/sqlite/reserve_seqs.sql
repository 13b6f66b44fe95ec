-- $1: JSON array of {id, attempt, n}: n sequence numbers for each running attempt.
UPDATE tasks
SET seq = tasks.seq + (c.value ->> 'n')
FROM jsonb_each($1) AS c
WHERE tasks.id = unhex(c.value ->> 'id')
  AND tasks.attempt = c.value ->> 'attempt'
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.attempt, tasks.seq, tasks.agent, tasks.owner_id
