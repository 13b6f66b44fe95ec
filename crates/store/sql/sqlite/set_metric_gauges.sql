-- $1: JSON array of {metric, agent, bucket, value}; $2: bucket start (one-minute rows).
INSERT INTO metric_rollups (resolution_s, metric, agent, bucket, bucket_start, value)
SELECT 60, j.value ->> 'metric', j.value ->> 'agent', j.value ->> 'bucket', $2, j.value ->> 'value'
FROM json_each($1) AS j
WHERE true
ON CONFLICT (resolution_s, metric, agent, bucket, bucket_start)
DO UPDATE SET value = excluded.value
