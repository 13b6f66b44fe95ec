-- $1: JSON array of {id, attempt, n, s}: n sequence numbers for each running attempt, s
-- of them for stream events (progress, partial output), which the task counts.
UPDATE tasks
SET seq = tasks.seq + c.n,
    streamed = tasks.streamed + c.s
FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, attempt bigint, n bigint, s bigint)
WHERE tasks.id = c.id
  AND tasks.attempt = c.attempt
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.attempt, tasks.seq, tasks.streamed, tasks.agent, tasks.owner_id
