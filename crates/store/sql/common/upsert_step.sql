-- A step: new, or the next run of a failed one; a succeeded step is never replaced.
-- Ordinal: the steps the task holds so far.
INSERT INTO task_steps (task_id, name, ordinal, status, attempt, output, error, started_at, finished_at)
VALUES ($1, $2, (SELECT count(*) FROM task_steps WHERE task_id = $1), $3, $4, $5, $6, $7, $8)
ON CONFLICT (task_id, name) DO UPDATE SET
    status = excluded.status, attempt = excluded.attempt, output = excluded.output,
    error = excluded.error, started_at = excluded.started_at, finished_at = excluded.finished_at
WHERE task_steps.status = 'failed'
