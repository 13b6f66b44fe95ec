DELETE FROM alert_events WHERE at < $1 AND notify_status <> 'pending'
