-- $1: the smallest task id created at the cutoff (task ids are UUIDv7): the kept stream
-- events of tasks created before it go with their logs.
DELETE FROM task_stream WHERE task_id < $1
