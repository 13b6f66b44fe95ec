-- A task's child tasks and how they stand.
SELECT id, status, output, error FROM tasks WHERE parent_id = $1
