-- Takes back what a claim leased to a worker when the claim's answer never reached it
-- (the connection died after the commit): the tasks it claimed at $2 go back to the
-- queue as they were, their attempt number with them. The worker never saw them, so
-- nothing ran; left alone, its heartbeats would renew their leases for ever.
UPDATE tasks
SET status = CASE WHEN attempt - 1 > attempt_base THEN 'retrying' ELSE 'queued' END,
    attempt = attempt - 1, worker_id = NULL, worker_name = NULL, lease_expires_at = NULL
WHERE worker_id = $1 AND status = 'running' AND started_at = $2 AND updated_at = $2
