SELECT tat, paused_until FROM rate_limits WHERE key = $1
