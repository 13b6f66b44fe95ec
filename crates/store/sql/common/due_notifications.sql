SELECT id, rule_id, rule_name, kind, agent, state, value, threshold, at, message, webhook_url,
       notify_status, notify_attempts, next_notify_at, notify_error
FROM alert_events
WHERE notify_status = 'pending' AND next_notify_at <= $1
ORDER BY next_notify_at, id
LIMIT $2
