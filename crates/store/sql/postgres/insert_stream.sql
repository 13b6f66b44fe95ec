-- $1: JSON array of {id, n, seq, attempt, at, body}: stream events of running attempts.
INSERT INTO task_stream (task_id, n, seq, attempt, at, body)
SELECT j.id, j.n, j.seq, j.attempt, j.at, j.body
FROM jsonb_to_recordset($1::jsonb) AS j(id uuid, n bigint, seq bigint, attempt bigint, at bigint, body jsonb)
ON CONFLICT DO NOTHING
