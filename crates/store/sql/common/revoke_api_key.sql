UPDATE api_keys SET revoked_at = $3
WHERE id = $1 AND ($2 IS NULL OR user_id = $2) AND revoked_at IS NULL
