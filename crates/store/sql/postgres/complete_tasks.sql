-- $1: JSON array of completions, at most one per task, each an array (positions, as on
-- SQLite):
--   0 id  1 attempt  2 at  3 status  4 attempt_status  5 finished_at  6 [output] or []
--   7 [error] or []  8 run_at (retries)  9 fallback_task_id
-- One statement does SQLite's record_attempts and complete_tasks: tasks whose attempt
-- still holds its lease are updated (the update re-checks attempt and status on the
-- current row, so a concurrent reaper wins or loses cleanly) and exactly those attempts
-- are recorded; results for lost leases change nothing. The update leaves the attempt's
-- worker and start alone, so the returned row still holds them for the attempt record.
-- A succeeded attempt is not recorded: it is the task's last, and the row itself
-- describes it (worker, started_at, finished_at), as it describes a running one. The one
-- join is by primary key, row by row.
WITH c AS (
    SELECT (value ->> 0)::uuid AS id, (value ->> 1)::bigint AS attempt, value
    FROM jsonb_array_elements($1::jsonb)),
done AS (
    UPDATE tasks
    SET status = c.value ->> 3,
        output = c.value -> 6 -> 0,
        error = c.value -> 7 -> 0,
        run_at = coalesce((c.value ->> 8)::bigint, tasks.run_at),
        finished_at = (c.value ->> 5)::bigint,
        updated_at = (c.value ->> 2)::bigint,
        fallback_task_id = (c.value ->> 9)::uuid,
        lease_expires_at = NULL,
        cancel_requested_at = NULL,
        seq = GREATEST(tasks.seq, tasks.numbered) + 1
    FROM c
    WHERE tasks.id = c.id AND tasks.attempt = c.attempt AND tasks.status = 'running'
    RETURNING tasks.id, tasks.agent, tasks.owner_id, tasks.status, tasks.seq, tasks.attempt,
              tasks.run_at, tasks.updated_at, c.value, tasks.worker_id, tasks.worker_name,
              tasks.started_at),
recorded AS (
    INSERT INTO task_attempts (task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error)
    SELECT id, attempt, worker_id, worker_name,
           coalesce(started_at, (value ->> 2)::bigint), (value ->> 2)::bigint,
           value ->> 4, value -> 7 -> 0
    FROM done
    WHERE value ->> 4 <> 'succeeded'
    ON CONFLICT DO NOTHING)
SELECT id, agent, owner_id, status, seq, attempt, run_at, updated_at FROM done
