INSERT INTO agents (name, spec, builtin, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, builtin = excluded.builtin, updated_at = excluded.updated_at
