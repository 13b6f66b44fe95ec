SELECT DISTINCT agent FROM tasks
WHERE status IN ('queued', 'retrying') AND run_at <= $1
