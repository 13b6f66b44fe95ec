INSERT INTO audit_log (id, at, actor, actor_user_id, actor_key_id, actor_key_name, action,
                       target_kind, target_id, outcome, reason, request_id, client_addr, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
