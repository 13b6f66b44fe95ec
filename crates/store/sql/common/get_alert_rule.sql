SELECT id, spec, state, created_at, updated_at FROM alert_rules WHERE id = $1
