-- $1: JSON array of {id (hex), complete (0/1)}: (re)assigns each task its document row.
INSERT INTO task_search_docs (task_id, complete)
SELECT unhex(j.value ->> 'id'), j.value ->> 'complete'
FROM json_each($1) AS j
WHERE true
ON CONFLICT (task_id) DO UPDATE SET complete = excluded.complete
