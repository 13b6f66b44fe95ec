-- A task's state for a wait or a signal, locked until the transaction ends (row locks
-- where the database has them; SQLite's single writer serialises these transactions).
SELECT status, attempt, agent, owner_id, wait, cancel_requested_at, seq
FROM tasks WHERE id = $1
FOR UPDATE
