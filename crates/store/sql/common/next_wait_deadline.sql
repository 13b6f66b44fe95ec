-- When the next waiting task's time is up ($1: the timestamp of waits without a time).
SELECT min(run_at) FROM tasks WHERE status = 'waiting' AND run_at < $1
