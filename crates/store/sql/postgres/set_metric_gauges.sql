-- $1: JSON array of {metric, agent, bucket, value}; $2: bucket start (one-minute rows).
INSERT INTO metric_rollups (resolution_s, metric, agent, bucket, bucket_start, value)
SELECT 60, j.metric, j.agent, j.bucket, $2, j.value
FROM jsonb_to_recordset($1::jsonb) AS j(metric text, agent text, bucket bigint, value double precision)
ON CONFLICT (resolution_s, metric, agent, bucket, bucket_start)
DO UPDATE SET value = excluded.value
