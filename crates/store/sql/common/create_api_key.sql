INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, scopes, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
