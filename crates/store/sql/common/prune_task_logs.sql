-- $1: the smallest task id created at the cutoff (task ids are UUIDv7): logs of tasks
-- created before it go, found through the primary key with no index on `at`.
DELETE FROM task_logs WHERE task_id < $1
