-- The single writer connection already serialises rotations.
SELECT id, user_id, created_at, expires_at, last_refreshed_at, user_agent, ip, refresh_hash, used_hashes,
    sealed_next
FROM sessions WHERE id = $1
