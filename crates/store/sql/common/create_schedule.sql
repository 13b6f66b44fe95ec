INSERT INTO schedules (name, spec, owner_id, created_at, updated_at, next_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (name) DO NOTHING
