-- $1: JSON array of {id, n, seq, attempt, at, body}: stream events of running attempts.
INSERT INTO task_stream (task_id, n, seq, attempt, at, body)
SELECT unhex(j.value ->> 'id'), j.value ->> 'n', j.value ->> 'seq', j.value ->> 'attempt',
       j.value ->> 'at', j.value -> 'body'
FROM jsonb_each($1) AS j
WHERE true
ON CONFLICT DO NOTHING
