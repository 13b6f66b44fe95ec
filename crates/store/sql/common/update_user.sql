UPDATE users
SET role = coalesce($2, role), disabled = coalesce($3, disabled),
    password_hash = coalesce($4, password_hash), updated_at = $5
WHERE id = $1
RETURNING id, email, role, disabled, created_at, updated_at, password_hash
