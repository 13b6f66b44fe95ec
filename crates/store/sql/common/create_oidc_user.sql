INSERT INTO users (id, email, password_hash, role, disabled, created_at, updated_at, oidc_issuer, oidc_subject)
VALUES ($1, $2, $3, $4, false, $5, $5, $6, $7)
