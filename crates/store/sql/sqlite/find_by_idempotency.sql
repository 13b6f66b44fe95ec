-- The task holding an idempotency key (through the index tasks_idempotency).
SELECT id FROM tasks
WHERE coalesce(owner_id, '') = coalesce($1, '') AND idempotency_key = $2
