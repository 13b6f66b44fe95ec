SELECT name, spec, owner_id, created_at, updated_at, next_at FROM schedules ORDER BY name
