SELECT id FROM tasks
WHERE owner_id IS NOT DISTINCT FROM $1 AND idempotency_key = $2
