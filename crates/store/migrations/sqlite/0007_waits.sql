-- Durable waits: what a `waiting` task waits for (JSON, see switchyard_core::wait::Wait),
-- its kind for the join sweep, and signals sent before the task waited for them.
-- A waiting task's `run_at` is when its sleep ends or its signal wait times out
-- (253402300799999, the largest timestamp, when neither applies).
ALTER TABLE tasks ADD COLUMN wait TEXT;
ALTER TABLE tasks ADD COLUMN wait_kind TEXT;
CREATE INDEX tasks_waiting ON tasks (run_at) WHERE status = 'waiting';
CREATE INDEX tasks_joining ON tasks (id) WHERE status = 'waiting' AND wait_kind = 'children';

CREATE TABLE task_signals (
    task_id TEXT NOT NULL,
    -- The `seq` of its `signal_received` event: signals are consumed oldest first.
    id      INTEGER NOT NULL,
    name    TEXT NOT NULL,
    payload TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, id)
) WITHOUT ROWID;
