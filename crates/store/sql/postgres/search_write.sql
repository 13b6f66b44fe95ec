-- $1: JSON array of {id, complete, body}: writes (or rewrites) each task's document.
INSERT INTO task_search (task_id, complete, doc)
SELECT j.id, j.complete, to_tsvector('simple', j.body)
FROM jsonb_to_recordset($1::jsonb) AS j(id uuid, complete boolean, body text)
ON CONFLICT (task_id) DO UPDATE SET complete = excluded.complete, doc = excluded.doc
