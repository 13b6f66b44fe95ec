-- The progress and partial-output events of tasks, kept so that a follower that connects
-- late, to another server or after a restart receives the whole stream. A task keeps its
-- last queue.max_stream_events of them; `n` numbers a task's stream events from 1, so
-- dropping the oldest is a range delete on the key.
CREATE TABLE task_stream (
    task_id TEXT NOT NULL,
    n       INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    -- The event's body as JSON: {"kind": "partial", "data": ...} or {"kind": "progress", ...}.
    body    TEXT NOT NULL,
    PRIMARY KEY (task_id, n)
) WITHOUT ROWID;

-- How many stream events the task has had, and the seq of the newest one dropped (0: none).
ALTER TABLE tasks ADD COLUMN streamed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN stream_cut INTEGER NOT NULL DEFAULT 0;
