-- Frees an idempotency key older than the window. The owner is compared as the unique
-- index tasks_idempotency spells it, so the statement seeks that index instead of reading
-- every task of the owner.
UPDATE tasks SET idempotency_key = NULL
WHERE coalesce(owner_id, '') = coalesce($1, '') AND idempotency_key = $2 AND created_at < $3
