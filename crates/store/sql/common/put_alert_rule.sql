INSERT INTO alert_rules (id, spec, state, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
SET spec = excluded.spec, state = excluded.state, updated_at = excluded.updated_at
