-- Schedules whose next tick has come (schedules_due), the most overdue first.
SELECT name, spec, owner_id, created_at, updated_at, next_at FROM schedules
WHERE next_at IS NOT NULL AND next_at <= $1
ORDER BY next_at
LIMIT $2
