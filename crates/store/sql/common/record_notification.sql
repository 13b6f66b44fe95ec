UPDATE alert_events
SET notify_status = $2, notify_attempts = $3, next_notify_at = $4, notify_error = $5
WHERE id = $1
