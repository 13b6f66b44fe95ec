-- $1: a task, $2: the number of its oldest stream event to keep.
DELETE FROM task_stream WHERE task_id = $1 AND n < $2
