-- Tasks submitted in [$1, $2), as task-id bounds (UUIDv7), per agent.
SELECT agent,
       count(*) AS tasks,
       sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
       sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
       sum(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS dead,
       sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
       CAST(sum(CASE WHEN attempt > 1 THEN attempt - 1 ELSE 0 END) AS BIGINT) AS retries,
       sum(CASE WHEN fallback_task_id IS NOT NULL THEN 1 ELSE 0 END) AS fallbacks,
       sum(CASE WHEN cached THEN 1 ELSE 0 END) AS cached
FROM tasks
WHERE id >= $1 AND id < $2
GROUP BY agent
ORDER BY agent
