INSERT INTO sessions (id, user_id, created_at, expires_at, last_refreshed_at, user_agent, ip, refresh_hash, used_hashes, sealed_next)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    user_id = excluded.user_id, created_at = excluded.created_at, expires_at = excluded.expires_at,
    last_refreshed_at = excluded.last_refreshed_at, user_agent = excluded.user_agent, ip = excluded.ip,
    refresh_hash = excluded.refresh_hash, used_hashes = excluded.used_hashes, sealed_next = excluded.sealed_next
