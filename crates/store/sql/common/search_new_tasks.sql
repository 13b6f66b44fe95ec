-- The next tasks for the search indexer, in id (creation) order after the cursor.
SELECT id, agent, status, input, output, error
FROM tasks
WHERE id > $1
ORDER BY id
LIMIT $2
