SELECT id, email, role, disabled, created_at, updated_at, password_hash FROM users ORDER BY created_at, email
