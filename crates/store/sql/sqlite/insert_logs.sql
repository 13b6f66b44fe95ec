INSERT INTO task_logs (task_id, seq, attempt, at, level, message)
SELECT unhex(j.value ->> 'id'), j.value ->> 'seq', j.value ->> 'attempt', j.value ->> 'at',
       j.value ->> 'level', j.value ->> 'message'
FROM jsonb_each($1) AS j
WHERE true
ON CONFLICT DO NOTHING
