UPDATE schedules SET spec = $2, owner_id = $3, updated_at = $4, next_at = $5
WHERE name = $1
