-- Keeps the newest $1 records.
DELETE FROM backups
WHERE started_at < (SELECT started_at FROM backups ORDER BY started_at DESC LIMIT 1 OFFSET $1)
