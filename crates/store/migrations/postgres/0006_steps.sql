-- Durable steps: the outcome of each named step of a task, kept across its runs.
CREATE TABLE task_steps (
    task_id     uuid NOT NULL,
    name        text NOT NULL,
    -- Steps in the order they were first recorded.
    ordinal     bigint NOT NULL,
    status      text NOT NULL,
    attempt     bigint NOT NULL,
    output      jsonb,
    error       jsonb,
    started_at  bigint NOT NULL,
    finished_at bigint NOT NULL,
    PRIMARY KEY (task_id, name)
);
