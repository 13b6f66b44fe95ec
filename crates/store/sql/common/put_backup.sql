INSERT INTO backups (id, name, target, trigger, status, started_at, alive_at, finished_at,
                     size_bytes, tasks, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE
SET status = excluded.status, alive_at = excluded.alive_at,
    finished_at = excluded.finished_at, size_bytes = excluded.size_bytes,
    tasks = excluded.tasks, error = excluded.error
