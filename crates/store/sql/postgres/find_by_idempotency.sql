-- The task holding an idempotency key (through the index tasks_idempotency).
SELECT id FROM tasks
WHERE coalesce(owner_id, '00000000-0000-0000-0000-000000000000'::uuid)
        = coalesce($1::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
  AND idempotency_key = $2
