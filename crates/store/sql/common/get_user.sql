SELECT id, email, role, disabled, created_at, updated_at, password_hash FROM users WHERE id = $1
