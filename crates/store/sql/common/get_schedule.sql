SELECT name, spec, owner_id, created_at, updated_at, next_at FROM schedules WHERE name = $1
