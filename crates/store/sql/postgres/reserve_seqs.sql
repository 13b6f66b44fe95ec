-- $1: JSON array of {id, attempt, n}: n sequence numbers for each running attempt.
UPDATE tasks
SET seq = tasks.seq + c.n
FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, attempt bigint, n bigint)
WHERE tasks.id = c.id
  AND tasks.attempt = c.attempt
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.attempt, tasks.seq, tasks.agent, tasks.owner_id
