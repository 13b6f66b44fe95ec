-- A worker's heartbeat: extends the leases of the tasks it runs. Rows another
-- transaction holds (a completion or the reaper finishing the task) are skipped, not
-- waited for: waiting here while that transaction waits for a row this statement holds
-- is a deadlock, and a skipped lease that is still live gets extended by the next
-- heartbeat, well within the lease.
UPDATE tasks SET lease_expires_at = $2
WHERE id IN (
    SELECT id FROM tasks
    WHERE worker_id = $1 AND status = 'running'
    FOR UPDATE SKIP LOCKED)
  AND status = 'running'
