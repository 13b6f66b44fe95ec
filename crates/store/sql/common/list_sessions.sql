SELECT id, user_id, created_at, expires_at, last_refreshed_at, user_agent, ip, refresh_hash, used_hashes,
    sealed_next
FROM sessions WHERE user_id = $1 AND expires_at > $2
ORDER BY created_at, id
