-- $1: JSON array of {id, attempt, n}: a block of n event numbers for each running
-- attempt, after every number its task has handed out (`numbered`, or `seq` when a
-- status change came since). The task's `seq` moves only as the events are stored.
UPDATE tasks
SET numbered = max(tasks.seq, tasks.numbered) + (c.value ->> 'n')
FROM jsonb_each($1) AS c
WHERE tasks.id = unhex(c.value ->> 'id')
  AND tasks.attempt = c.value ->> 'attempt'
  AND tasks.status = 'running'
RETURNING tasks.id, tasks.attempt, tasks.numbered, tasks.agent, tasks.owner_id
