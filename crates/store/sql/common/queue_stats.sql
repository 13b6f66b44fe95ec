-- Per agent: tasks ready now, scheduled for later, running, and the oldest ready one.
-- Two branches, each with exactly the predicate of a partial index (the queue's,
-- tasks_fair / tasks_waiting_run_at, and tasks_running), so that the cost follows the
-- queue and the running set, never the finished history: one condition covering both
-- sets matches neither index, and both SQLite and PostgreSQL then read every task.
-- The queue is grouped as it is read (tasks_fair is in agent order), so the final
-- grouping sorts one row per agent plus the running set, never the backlog: sorting the
-- whole queue held it in memory (SQLite's temp store is in memory), and the server grew
-- with the backlog.
SELECT agent,
       CAST(sum(ready) AS BIGINT) AS ready,
       CAST(sum(scheduled) AS BIGINT) AS scheduled,
       CAST(sum(running) AS BIGINT) AS running,
       min(oldest_ready_at) AS oldest_ready_at
FROM (
    SELECT agent,
           sum(CASE WHEN run_at <= $1 THEN 1 ELSE 0 END) AS ready,
           sum(CASE WHEN run_at > $1 THEN 1 ELSE 0 END) AS scheduled,
           0 AS running,
           min(CASE WHEN run_at <= $1 THEN run_at END) AS oldest_ready_at
    FROM tasks
    WHERE status IN ('queued', 'retrying')
    GROUP BY agent
    UNION ALL
    SELECT agent, 0, 0, 1, NULL
    FROM tasks
    WHERE status = 'running'
) AS q
GROUP BY agent
ORDER BY agent
