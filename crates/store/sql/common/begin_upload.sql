INSERT INTO uploads (id, object_key, token, started_at) VALUES ($1, $2, $3, $4)
