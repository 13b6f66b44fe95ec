SELECT id, spec, state, created_at, updated_at FROM alert_rules ORDER BY created_at, id
