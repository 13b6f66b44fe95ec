SELECT name, spec, builtin, created_at, updated_at FROM agents ORDER BY name
