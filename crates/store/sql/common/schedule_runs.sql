SELECT id, scheduled_for, created_at, status FROM tasks
WHERE schedule = $1 AND scheduled_for IS NOT NULL
ORDER BY scheduled_for DESC, id DESC
LIMIT $2
