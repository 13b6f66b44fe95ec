-- Waiting tasks whose sleep is over or whose signal wait timed out, soonest first.
SELECT id, wait FROM tasks
WHERE status = 'waiting' AND run_at <= $1
ORDER BY run_at
LIMIT $2
