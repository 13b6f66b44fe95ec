-- What a task waits for, read without a lock.
SELECT status, wait FROM tasks WHERE id = $1
