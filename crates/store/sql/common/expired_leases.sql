SELECT id, agent, attempt, attempt - attempt_base AS attempts_in_run, worker_id, owner_id, input, parent_id, trace_id
FROM tasks
WHERE status = 'running' AND lease_expires_at < $1
ORDER BY lease_expires_at
LIMIT $2
