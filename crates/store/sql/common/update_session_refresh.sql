UPDATE sessions SET refresh_hash = $2, used_hashes = $3, expires_at = $4, last_refreshed_at = $5,
    sealed_next = $6
WHERE id = $1
