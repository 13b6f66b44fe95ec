-- $1: JSON array of tasks, each an array (positions, not keys: SQLite finds the n-th
-- element of a JSONB array without comparing names):
--   0 id (32 hex digits)  1 agent  2 status  3 seq  4 priority  5 input  6 [output] or []
--   7 cached  8 owner_id  9 idempotency_key  10 run_at  11 created_at  12 finished_at
--   13 parent_id  14 fallback_of  15 trace_id  and, for a task inserted claimed, its first
--   attempt's lease: 16 attempt  17 worker_id  18 worker_name  19 lease_expires_at  20 started_at
-- The output is a one-element array, or empty for none: a JSON null output stays distinct.
-- Used as is for fresh tasks (a duplicate id fails the batch), and with
-- `ON CONFLICT DO NOTHING RETURNING id` appended where idempotency keys may match.
INSERT INTO tasks (id, agent, status, seq, priority, input, output, cached, owner_id, idempotency_key,
                   run_at, created_at, updated_at, finished_at, parent_id, fallback_of, trace_id,
                   attempt, worker_id, worker_name, lease_expires_at, started_at)
SELECT unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
       j.value -> 5, j.value -> 6 -> 0, j.value ->> 7, unhex(j.value ->> 8), j.value ->> 9,
       j.value ->> 10, j.value ->> 11, j.value ->> 11, j.value ->> 12, unhex(j.value ->> 13),
       unhex(j.value ->> 14), j.value ->> 15, coalesce(j.value ->> 16, 0), unhex(j.value ->> 17),
       j.value ->> 18, j.value ->> 19, j.value ->> 20
FROM jsonb_each($1) AS j
WHERE true
