SELECT id, user_id, name, prefix, scopes, created_at, expires_at, revoked_at, last_used_at
FROM api_keys WHERE ($1 IS NULL OR user_id = $1)
ORDER BY created_at DESC
