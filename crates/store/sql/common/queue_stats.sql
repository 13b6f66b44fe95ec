SELECT agent,
       sum(CASE WHEN status IN ('queued', 'retrying') AND run_at <= $1 THEN 1 ELSE 0 END) AS ready,
       sum(CASE WHEN status IN ('queued', 'retrying') AND run_at > $1 THEN 1 ELSE 0 END) AS scheduled,
       sum(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running,
       min(CASE WHEN status IN ('queued', 'retrying') AND run_at <= $1 THEN run_at END) AS oldest_ready_at
FROM tasks
WHERE status IN ('queued', 'retrying', 'running')
GROUP BY agent
ORDER BY agent
