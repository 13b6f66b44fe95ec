INSERT INTO alert_events (id, rule_id, rule_name, kind, agent, state, value, threshold, at, message,
                          webhook_url, notify_status, notify_attempts, next_notify_at, notify_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
