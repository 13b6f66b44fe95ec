-- The same logical schema as migrations/sqlite/0001_init.sql. Times are BIGINT
-- milliseconds since the Unix epoch (UTC); ids are native UUIDs (v7 for tasks, so id
-- order is creation order); task input, output and errors are jsonb. Integers are
-- BIGINT throughout so every backend decodes them the same way.

CREATE TABLE tasks (
    id                  uuid PRIMARY KEY,
    agent               text NOT NULL,
    status              text NOT NULL,
    priority            bigint NOT NULL,
    input               jsonb NOT NULL,
    output              jsonb,
    error               jsonb,
    cached              boolean NOT NULL DEFAULT false,
    owner_id            uuid,
    idempotency_key     text,
    run_at              bigint NOT NULL,
    created_at          bigint NOT NULL,
    updated_at          bigint NOT NULL,
    started_at          bigint,
    finished_at         bigint,
    -- attempts started so far; doubles as the lease token results must quote
    attempt             bigint NOT NULL DEFAULT 0,
    -- value of `attempt` at the last replay: attempts in this run = attempt - attempt_base
    attempt_base        bigint NOT NULL DEFAULT 0,
    worker_id           uuid,
    worker_name         text,
    lease_expires_at    bigint,
    cancel_requested_at bigint,
    -- sequence number of the task's latest event
    seq                 bigint NOT NULL DEFAULT 0,
    parent_id           uuid,
    fallback_of         uuid,
    fallback_task_id    uuid,
    trace_id            text
);

-- The queue: per agent, highest priority first, then oldest.
CREATE INDEX tasks_ready ON tasks (agent, priority DESC, id) WHERE status IN ('queued', 'retrying');
-- Delayed work and backoff, for the dispatcher's next wake-up.
CREATE INDEX tasks_waiting_run_at ON tasks (run_at) WHERE status IN ('queued', 'retrying');
-- Leases, for the reaper and per-agent concurrency counts.
CREATE INDEX tasks_running ON tasks (agent, lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_worker ON tasks (worker_id) WHERE status = 'running';
CREATE UNIQUE INDEX tasks_idempotency
    ON tasks (coalesce(owner_id, '00000000-0000-0000-0000-000000000000'::uuid), idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_owner ON tasks (owner_id, id);
CREATE INDEX tasks_agent ON tasks (agent, id);
CREATE INDEX tasks_dead ON tasks (id) WHERE status IN ('dead', 'failed');
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE task_attempts (
    task_id     uuid NOT NULL,
    attempt     bigint NOT NULL,
    worker_id   uuid,
    worker_name text,
    started_at  bigint NOT NULL,
    finished_at bigint NOT NULL,
    status      text NOT NULL,
    error       jsonb,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE task_logs (
    task_id uuid NOT NULL,
    seq     bigint NOT NULL,
    attempt bigint NOT NULL,
    at      bigint NOT NULL,
    level   text NOT NULL,
    message text NOT NULL,
    PRIMARY KEY (task_id, seq)
);

-- Agent specs, API-key scopes and worker agent lists are JSON kept as text: the
-- application reads them whole and never queries inside them.
CREATE TABLE agents (
    name       text PRIMARY KEY,
    spec       text NOT NULL,
    builtin    boolean NOT NULL DEFAULT false,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id),
    name         text NOT NULL,
    prefix       text NOT NULL,
    secret_hash  text NOT NULL UNIQUE,
    scopes       text NOT NULL,
    created_at   bigint NOT NULL,
    expires_at   bigint,
    revoked_at   bigint,
    last_used_at bigint
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE workers (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    kind         text NOT NULL,
    agents       text NOT NULL,
    slots        bigint NOT NULL,
    slots_in_use bigint NOT NULL,
    version      text NOT NULL,
    host         text,
    started_at   bigint NOT NULL,
    heartbeat_at bigint NOT NULL
);

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
