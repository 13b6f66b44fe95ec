-- The row lock serialises concurrent rotations of one session across processes.
SELECT id, user_id, created_at, expires_at, last_refreshed_at, user_agent, ip, refresh_hash, used_hashes,
    sealed_next
FROM sessions WHERE id = $1
FOR UPDATE
