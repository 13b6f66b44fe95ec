INSERT INTO rate_limits (key, tat, paused_until) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET tat = excluded.tat, paused_until = excluded.paused_until
