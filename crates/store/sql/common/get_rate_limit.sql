SELECT tat FROM rate_limits WHERE key = $1
