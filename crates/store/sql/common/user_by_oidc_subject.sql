SELECT id, email, role, disabled, created_at, updated_at, password_hash FROM users
WHERE oidc_issuer = $1 AND oidc_subject = $2
