UPDATE tasks SET idempotency_key = NULL
WHERE owner_id IS NOT DISTINCT FROM $1 AND idempotency_key = $2 AND created_at < $3
