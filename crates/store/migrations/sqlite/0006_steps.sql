-- Durable steps: the outcome of each named step of a task, kept across its runs.
CREATE TABLE task_steps (
    task_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- Steps in the order they were first recorded.
    ordinal     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    output      TEXT,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, name)
) WITHOUT ROWID;
