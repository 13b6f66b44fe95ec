-- $1: JSON array of completions, at most one per task, each an array (positions, as on
-- SQLite):
--   0 id  1 attempt  2 at  3 status  4 attempt_status  5 finished_at  6 [output] or []
--   7 [error] or []  8 run_at (retries)  9 fallback_task_id
-- One statement does SQLite's record_attempts and complete_tasks: attempts that still
-- hold their lease are locked, their tasks updated and the attempts recorded; results
-- for lost leases change nothing.
WITH c AS (
    SELECT (value ->> 0)::uuid AS id, (value ->> 1)::bigint AS attempt, value
    FROM jsonb_array_elements($1::jsonb)),
held AS (
    SELECT t.id, t.worker_id, t.worker_name, t.started_at, c.value
    FROM tasks AS t JOIN c ON t.id = c.id
    WHERE t.attempt = c.attempt AND t.status = 'running'
    FOR UPDATE OF t),
done AS (
    UPDATE tasks
    SET status = held.value ->> 3,
        output = held.value -> 6 -> 0,
        error = held.value -> 7 -> 0,
        run_at = coalesce((held.value ->> 8)::bigint, tasks.run_at),
        finished_at = (held.value ->> 5)::bigint,
        updated_at = (held.value ->> 2)::bigint,
        fallback_task_id = (held.value ->> 9)::uuid,
        worker_id = NULL,
        lease_expires_at = NULL,
        cancel_requested_at = NULL,
        seq = tasks.seq + 1
    FROM held
    WHERE tasks.id = held.id
    RETURNING tasks.id, tasks.agent, tasks.owner_id, tasks.status, tasks.seq, tasks.attempt,
              tasks.run_at, tasks.updated_at, held.worker_id, held.worker_name, held.started_at,
              held.value),
recorded AS (
    INSERT INTO task_attempts (task_id, attempt, worker_id, worker_name, started_at, finished_at, status, error)
    SELECT id, attempt, worker_id, worker_name, coalesce(started_at, (value ->> 2)::bigint),
           (value ->> 2)::bigint, value ->> 4, value -> 7 -> 0
    FROM done
    ON CONFLICT DO NOTHING)
SELECT id, agent, owner_id, status, seq, attempt, run_at, updated_at FROM done
