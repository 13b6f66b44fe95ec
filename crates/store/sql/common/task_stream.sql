-- A task's kept stream events after seq $2, oldest first, with what was dropped before
-- them: the task's stream count and the seq of the newest event dropped.
SELECT s.n, s.seq, s.attempt, s.at, s.body, t.streamed, t.stream_cut
FROM task_stream s
JOIN tasks t ON t.id = s.task_id
WHERE s.task_id = $1 AND s.seq > $2
ORDER BY s.n
LIMIT $3
