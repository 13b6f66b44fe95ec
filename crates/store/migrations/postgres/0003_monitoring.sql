-- The same logical schema as migrations/sqlite/0003_monitoring.sql.

CREATE TABLE metric_rollups (
    resolution_s bigint NOT NULL,
    metric       text NOT NULL,
    agent        text NOT NULL,
    bucket       bigint NOT NULL,
    bucket_start bigint NOT NULL,
    value        double precision NOT NULL,
    PRIMARY KEY (resolution_s, metric, agent, bucket, bucket_start)
);
CREATE INDEX metric_rollups_time ON metric_rollups (resolution_s, bucket_start);

CREATE TABLE alert_rules (
    id         uuid PRIMARY KEY,
    spec       text NOT NULL,
    state      text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE alert_events (
    id              uuid PRIMARY KEY,
    rule_id         uuid NOT NULL,
    rule_name       text NOT NULL,
    kind            text NOT NULL,
    agent           text,
    state           text NOT NULL,
    value           double precision NOT NULL,
    threshold       double precision NOT NULL,
    at              bigint NOT NULL,
    message         text NOT NULL,
    webhook_url     text,
    notify_status   text NOT NULL,
    notify_attempts bigint NOT NULL DEFAULT 0,
    next_notify_at  bigint,
    notify_error    text
);
CREATE INDEX alert_events_rule ON alert_events (rule_id, id);
CREATE INDEX alert_events_due ON alert_events (next_notify_at) WHERE notify_status = 'pending';

-- Full-text search: one tsvector per task ('simple' configuration: the indexer already
-- reduced the text to lowercase words), filled in batches off the submit path.
CREATE TABLE task_search (
    task_id  uuid PRIMARY KEY,
    complete boolean NOT NULL,
    doc      tsvector NOT NULL
);
CREATE INDEX task_search_doc ON task_search USING gin (doc);
CREATE INDEX task_search_incomplete ON task_search (task_id) WHERE NOT complete;
