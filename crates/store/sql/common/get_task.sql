SELECT id, agent, status, priority, input, output, error, cached, owner_id, idempotency_key,
       run_at, created_at, updated_at, started_at, finished_at, attempt, worker_id, worker_name,
       cancel_requested_at, seq, parent_id, fallback_of, fallback_task_id, trace_id, wait,
       flow_key, schedule, scheduled_for
FROM tasks
WHERE id = $1
