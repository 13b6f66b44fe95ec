SELECT id, user_id, name, prefix, scopes, created_at, expires_at, revoked_at, last_used_at
FROM api_keys WHERE secret_hash = $1
