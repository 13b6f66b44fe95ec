-- Rows of `t` (25 bound parameters each; see `values.rs`):
--   id (16-byte blob)  agent  status  seq  priority  input (JSON)  output (JSON or NULL)
--   cached  owner_id  idempotency_key  run_at  created_at  finished_at  parent_id
--   fallback_of  trace_id  flow_key  fair_key  schedule  scheduled_for  and, for a task
--   inserted claimed, its first attempt's lease:
--   attempt (else 0)  worker_id  worker_name  lease_expires_at  started_at
-- Rows whose id is NULL pad the statement to its shape and are skipped.
-- Used as is for fresh tasks (a duplicate id fails the batch), and with
-- `ON CONFLICT DO NOTHING RETURNING id` appended where idempotency keys may match.
WITH t(id, agent, status, seq, priority, input, output, cached, owner_id, idempotency_key,
       run_at, created_at, finished_at, parent_id, fallback_of, trace_id,
       flow_key, fair_key, schedule, scheduled_for,
       attempt, worker_id, worker_name, lease_expires_at, started_at) AS (VALUES {rows})
INSERT INTO tasks (id, agent, status, seq, priority, input, output, cached, owner_id, idempotency_key,
                   run_at, created_at, updated_at, finished_at, parent_id, fallback_of, trace_id,
                   flow_key, fair_key, schedule, scheduled_for,
                   attempt, worker_id, worker_name, lease_expires_at, started_at)
SELECT id, agent, status, seq, priority, input, output, cached, owner_id, idempotency_key,
       run_at, created_at, created_at, finished_at, parent_id, fallback_of, trace_id,
       flow_key, fair_key, schedule, scheduled_for,
       attempt, worker_id, worker_name, lease_expires_at, started_at
FROM t
WHERE id IS NOT NULL
