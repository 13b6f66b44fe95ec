-- Folds one-minute rows starting before $1 into one-hour rows: sums, maxima for gauges ($2:
-- JSON array of gauge names).
INSERT INTO metric_rollups (resolution_s, metric, agent, bucket, bucket_start, value)
SELECT 3600, metric, agent, bucket, (bucket_start / 3600000) * 3600000,
       CASE WHEN metric IN (SELECT jsonb_array_elements_text($2::jsonb)) THEN max(value) ELSE sum(value) END
FROM metric_rollups
WHERE resolution_s = 60 AND bucket_start < $1
GROUP BY metric, agent, bucket, bucket_start / 3600000
ON CONFLICT (resolution_s, metric, agent, bucket, bucket_start)
DO UPDATE SET value = CASE
    WHEN metric_rollups.metric IN (SELECT jsonb_array_elements_text($2::jsonb))
        THEN greatest(metric_rollups.value, excluded.value)
    ELSE metric_rollups.value + excluded.value
END
