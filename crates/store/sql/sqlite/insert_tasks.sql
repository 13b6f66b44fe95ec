-- $1: JSON array of tasks; ids are 32-digit hex. jsonb_each hands each row to `->>` as
-- JSONB, so fields are read without re-parsing the row text.
INSERT INTO tasks (id, agent, status, priority, input, output, cached, owner_id, idempotency_key,
                   run_at, created_at, updated_at, finished_at, parent_id, fallback_of, trace_id, seq)
SELECT unhex(j.value ->> 'id'), j.value ->> 'agent', j.value ->> 'status', j.value ->> 'priority',
       j.value -> 'input', j.value -> 'output', j.value ->> 'cached', unhex(j.value ->> 'owner_id'),
       j.value ->> 'idempotency_key', j.value ->> 'run_at', j.value ->> 'created_at',
       j.value ->> 'created_at', j.value ->> 'finished_at', unhex(j.value ->> 'parent_id'),
       unhex(j.value ->> 'fallback_of'), j.value ->> 'trace_id', 1
FROM jsonb_each($1) AS j
WHERE true
ON CONFLICT DO NOTHING
RETURNING id
