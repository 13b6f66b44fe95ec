-- Drops the documents of these tasks ($1: JSON array of hex ids) before they are rewritten.
DELETE FROM task_search
WHERE rowid IN (SELECT doc FROM task_search_docs WHERE task_id IN (SELECT unhex(value) FROM json_each($1)))
