SELECT id, name, target, trigger, status, started_at, alive_at, finished_at, size_bytes,
       tasks, error
FROM backups
ORDER BY started_at DESC, id DESC
LIMIT $1
