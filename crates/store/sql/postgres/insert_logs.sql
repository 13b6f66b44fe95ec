INSERT INTO task_logs (task_id, seq, attempt, at, level, message)
SELECT j.id, j.seq, j.attempt, j.at, j.level, j.message
FROM jsonb_to_recordset($1::jsonb) AS j(id uuid, seq bigint, attempt bigint, at bigint, level text, message text)
ON CONFLICT DO NOTHING
