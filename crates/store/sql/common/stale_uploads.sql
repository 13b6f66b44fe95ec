SELECT id, object_key, token, started_at FROM uploads
WHERE started_at < $1
ORDER BY started_at
LIMIT $2
