-- $1: JSON array of tasks; ids are 32-digit hex. `->` (not jsonb_to_recordset) keeps a
-- JSON null output distinct from a missing one, exactly as on SQLite.
INSERT INTO tasks (id, agent, status, priority, input, output, cached, owner_id, idempotency_key,
                   run_at, created_at, updated_at, finished_at, parent_id, fallback_of, trace_id, seq)
SELECT (j.value ->> 'id')::uuid, j.value ->> 'agent', j.value ->> 'status',
       (j.value ->> 'priority')::bigint, j.value -> 'input', j.value -> 'output',
       (j.value ->> 'cached')::boolean, (j.value ->> 'owner_id')::uuid, j.value ->> 'idempotency_key',
       (j.value ->> 'run_at')::bigint, (j.value ->> 'created_at')::bigint,
       (j.value ->> 'created_at')::bigint, (j.value ->> 'finished_at')::bigint,
       (j.value ->> 'parent_id')::uuid, (j.value ->> 'fallback_of')::uuid, j.value ->> 'trace_id', 1
FROM jsonb_array_elements($1::jsonb) AS j(value)
ON CONFLICT DO NOTHING
RETURNING id
