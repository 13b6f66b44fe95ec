-- Times are INTEGER milliseconds since the Unix epoch (UTC); ids are lowercase hyphenated
-- UUID text (v7 for tasks, so text order is creation order); JSON is stored as TEXT.

CREATE TABLE tasks (
    id                  TEXT PRIMARY KEY NOT NULL,
    agent               TEXT NOT NULL,
    status              TEXT NOT NULL,
    priority            INTEGER NOT NULL,
    input               TEXT NOT NULL,
    output              TEXT,
    error               TEXT,
    cached              INTEGER NOT NULL DEFAULT 0,
    owner_id            TEXT,
    idempotency_key     TEXT,
    run_at              INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    -- attempts started so far; doubles as the lease token results must quote
    attempt             INTEGER NOT NULL DEFAULT 0,
    -- value of `attempt` at the last replay: attempts in this run = attempt - attempt_base
    attempt_base        INTEGER NOT NULL DEFAULT 0,
    worker_id           TEXT,
    worker_name         TEXT,
    lease_expires_at    INTEGER,
    cancel_requested_at INTEGER,
    -- sequence number of the task's latest event
    seq                 INTEGER NOT NULL DEFAULT 0,
    parent_id           TEXT,
    fallback_of         TEXT,
    fallback_task_id    TEXT,
    trace_id            TEXT
);

-- The queue: per agent, highest priority first, then oldest.
CREATE INDEX tasks_ready ON tasks (agent, priority DESC, id) WHERE status IN ('queued', 'retrying');
-- Delayed work and backoff, for the dispatcher's next wake-up.
CREATE INDEX tasks_waiting_run_at ON tasks (run_at) WHERE status IN ('queued', 'retrying');
-- Leases, for the reaper and per-agent concurrency counts.
CREATE INDEX tasks_running ON tasks (agent, lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE status = 'running';
CREATE UNIQUE INDEX tasks_idempotency ON tasks (coalesce(owner_id, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_owner ON tasks (owner_id, id);
CREATE INDEX tasks_agent ON tasks (agent, id);
CREATE INDEX tasks_dead ON tasks (id) WHERE status IN ('dead', 'failed');
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE task_attempts (
    task_id     TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    worker_name TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (task_id, attempt)
) WITHOUT ROWID;

CREATE TABLE task_logs (
    task_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    level   TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

CREATE TABLE agents (
    name       TEXT PRIMARY KEY NOT NULL,
    spec       TEXT NOT NULL,
    builtin    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    agents       TEXT NOT NULL,
    slots        INTEGER NOT NULL,
    slots_in_use INTEGER NOT NULL,
    version      TEXT NOT NULL,
    host         TEXT,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
