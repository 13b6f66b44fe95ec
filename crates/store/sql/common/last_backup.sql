-- The newest backup that succeeded (a deleted one had succeeded).
SELECT id, name, target, trigger, status, started_at, alive_at, finished_at, size_bytes,
       tasks, error
FROM backups
WHERE status IN ('succeeded', 'deleted')
ORDER BY started_at DESC, id DESC
LIMIT 1
