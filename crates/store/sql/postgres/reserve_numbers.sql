-- $1: JSON array of {id, attempt, n}: a block of n event numbers for each running
-- attempt, after every number its task has handed out (`numbered`, or `seq` when a
-- status change came since). The task's `seq` moves only as the events are stored.
UPDATE tasks
SET numbered = GREATEST(tasks.seq, tasks.numbered) + c.n
FROM jsonb_to_recordset($1::jsonb) AS c(id uuid, attempt bigint, n bigint)
WHERE tasks.id = c.id
  AND tasks.attempt = c.attempt
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.attempt, tasks.numbered, tasks.agent, tasks.owner_id
