INSERT INTO rate_limits (key, tat) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET tat = excluded.tat
