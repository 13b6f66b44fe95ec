-- Tasks waiting for child tasks, a page at a time (by id, after $1), read without a lock.
SELECT id, wait FROM tasks
WHERE status = 'waiting' AND wait_kind = 'children' AND id > $1
ORDER BY id
LIMIT $2
