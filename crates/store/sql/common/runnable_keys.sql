-- Up to $4 fair keys of agent $1 with tasks runnable at $2, at its highest runnable
-- priority level, in key order after $3: a skip scan of tasks_fair, one index seek per
-- key however long each key's queue is. With $5, the running tasks of each flow key
-- (tasks_running_key).
WITH RECURSIVE
lvl(p) AS (
    SELECT priority FROM tasks
    WHERE agent = $1 AND status IN ('queued', 'retrying') AND run_at <= $2
    ORDER BY priority DESC
    LIMIT 1),
k(key, n) AS (
    SELECT (SELECT fair_key FROM tasks
            WHERE agent = $1 AND status IN ('queued', 'retrying') AND priority = (SELECT p FROM lvl)
              AND run_at <= $2 AND fair_key > $3
            ORDER BY fair_key
            LIMIT 1), 1
    UNION ALL
    SELECT (SELECT fair_key FROM tasks
            WHERE agent = $1 AND status IN ('queued', 'retrying') AND priority = (SELECT p FROM lvl)
              AND run_at <= $2 AND fair_key > k.key
            ORDER BY fair_key
            LIMIT 1), n + 1
    FROM k
    WHERE k.key IS NOT NULL AND n < $4)
SELECT k.key AS fair_key, (SELECT p FROM lvl) AS priority,
       CASE WHEN $5 AND substr(k.key, 1, 2) = 'k:' THEN
           (SELECT count(*) FROM tasks AS r
            WHERE r.agent = $1 AND r.status = 'running' AND r.flow_key = substr(k.key, 3))
       ELSE 0 END AS running
FROM k
WHERE k.key IS NOT NULL
