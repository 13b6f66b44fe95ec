-- The completions of `complete_tasks` (same rows, same parameters). Only attempts that
-- still hold their lease are recorded; run it before complete_tasks, in the same
-- transaction. A succeeded attempt is not recorded: it is the task's last, and the row
-- describes it.
WITH c(id, attempt, at, status, attempt_status, finished_at, output, error, run_at,
       fallback_task_id) AS (VALUES {rows})
INSERT INTO task_attempts (task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error)
SELECT t.id, t.attempt, t.worker_id, t.worker_name, coalesce(t.started_at, c.at),
       c.at, c.attempt_status, c.error
FROM c
JOIN tasks AS t ON t.id = c.id
WHERE t.attempt = c.attempt AND t.status = 'running' AND c.attempt_status <> 'succeeded'
ON CONFLICT DO NOTHING
