-- $1: JSON array of completions (as in complete_tasks). Only attempts that still hold
-- their lease are recorded; run it before complete_tasks, in the same transaction. A
-- succeeded attempt is not recorded: it is the task's last, and the row describes it.
INSERT INTO task_attempts (task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error)
SELECT t.id, t.attempt, t.worker_id, t.worker_name, coalesce(t.started_at, c.value ->> 2),
       c.value ->> 2, c.value ->> 4, c.value -> 7 -> 0
FROM jsonb_each($1) AS c
JOIN tasks AS t ON t.id = unhex(c.value ->> 0)
WHERE t.attempt = c.value ->> 1 AND t.status = 'running' AND c.value ->> 4 <> 'succeeded'
ON CONFLICT DO NOTHING
