-- $1: JSON array of {id (hex), body}: writes each task's document under its doc rowid.
INSERT INTO task_search (rowid, body)
SELECT d.doc, j.value ->> 'body'
FROM json_each($1) AS j
JOIN task_search_docs AS d ON d.task_id = unhex(j.value ->> 'id')
