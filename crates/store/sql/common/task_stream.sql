-- A task's kept stream events after seq $2, oldest first, with the seq of the newest
-- event dropped before them (0: none).
SELECT s.n, s.seq, s.attempt, s.at, s.body, t.stream_cut
FROM task_stream s
JOIN tasks t ON t.id = s.task_id
WHERE s.task_id = $1 AND s.seq > $2
ORDER BY s.n
LIMIT $3
