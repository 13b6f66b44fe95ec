-- $1: JSON array of tasks, each an array (positions, as on SQLite):
--   0 id (32 hex digits)  1 agent  2 status  3 seq  4 priority  5 input  6 [output] or []
--   7 cached  8 owner_id  9 idempotency_key  10 run_at  11 created_at  12 finished_at
--   13 parent_id  14 fallback_of  15 trace_id  16 flow_key  17 fair_key  18 schedule
--   19 scheduled_for  and, for a task inserted claimed, its first attempt's lease:
--   20 attempt  21 worker_id  22 worker_name  23 lease_expires_at  24 started_at
-- The output is a one-element array, or empty for none: a JSON null output stays distinct.
-- Used as is for fresh tasks (a duplicate id fails the batch), and with
-- `ON CONFLICT DO NOTHING RETURNING id` appended where idempotency keys may match.
INSERT INTO tasks (id, agent, status, seq, priority, input, output, cached, owner_id, idempotency_key,
                   run_at, created_at, updated_at, finished_at, parent_id, fallback_of, trace_id,
                   flow_key, fair_key, schedule, scheduled_for,
                   attempt, worker_id, worker_name, lease_expires_at, started_at)
SELECT (j.value ->> 0)::uuid, j.value ->> 1, j.value ->> 2, (j.value ->> 3)::bigint,
       (j.value ->> 4)::bigint, j.value -> 5, j.value -> 6 -> 0, (j.value ->> 7)::boolean,
       (j.value ->> 8)::uuid, j.value ->> 9, (j.value ->> 10)::bigint, (j.value ->> 11)::bigint,
       (j.value ->> 11)::bigint, (j.value ->> 12)::bigint, (j.value ->> 13)::uuid,
       (j.value ->> 14)::uuid, j.value ->> 15, j.value ->> 16, j.value ->> 17, j.value ->> 18,
       (j.value ->> 19)::bigint, coalesce((j.value ->> 20)::bigint, 0),
       (j.value ->> 21)::uuid, j.value ->> 22, (j.value ->> 23)::bigint, (j.value ->> 24)::bigint
FROM jsonb_array_elements($1::jsonb) AS j(value)
