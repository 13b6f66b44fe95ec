-- Submit → finish latency of the finished tasks submitted in [$1, $2), per agent and
-- latency bucket. The bounds are `monitoring::LATENCY_BUCKETS_MS` (a test keeps them equal).
SELECT agent,
       CAST(CASE
           WHEN finished_at - created_at <= 1 THEN 0
           WHEN finished_at - created_at <= 2 THEN 1
           WHEN finished_at - created_at <= 5 THEN 2
           WHEN finished_at - created_at <= 10 THEN 3
           WHEN finished_at - created_at <= 25 THEN 4
           WHEN finished_at - created_at <= 50 THEN 5
           WHEN finished_at - created_at <= 100 THEN 6
           WHEN finished_at - created_at <= 250 THEN 7
           WHEN finished_at - created_at <= 500 THEN 8
           WHEN finished_at - created_at <= 1000 THEN 9
           WHEN finished_at - created_at <= 2500 THEN 10
           WHEN finished_at - created_at <= 5000 THEN 11
           WHEN finished_at - created_at <= 10000 THEN 12
           WHEN finished_at - created_at <= 30000 THEN 13
           WHEN finished_at - created_at <= 60000 THEN 14
           WHEN finished_at - created_at <= 300000 THEN 15
           WHEN finished_at - created_at <= 900000 THEN 16
           WHEN finished_at - created_at <= 3600000 THEN 17
           ELSE 18
       END AS BIGINT) AS bucket,
       count(*) AS n
FROM tasks
WHERE id >= $1 AND id < $2 AND finished_at IS NOT NULL
  AND status IN ('succeeded', 'failed', 'dead', 'cancelled')
GROUP BY agent, bucket
ORDER BY agent, bucket
