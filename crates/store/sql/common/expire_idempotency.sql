UPDATE tasks SET idempotency_key = NULL
WHERE idempotency_key IS NOT NULL AND created_at < $1
