-- $1: a task, $2: the number of its oldest stream event to keep. Remembers the seq of
-- the newest event dropped (followers are told what they missed); `cut_stream_rows`
-- then drops them.
UPDATE tasks
SET stream_cut = COALESCE(
    (SELECT max(seq) FROM task_stream WHERE task_id = $1 AND n < $2), stream_cut)
WHERE id = $1
