-- Monitoring: metric rollups (the time-series store behind the dashboard and alerts),
-- alert rules and their firing/resolved events, and the full-text search index.

-- One row per (resolution, metric, agent, histogram bucket, bucket start). Every process
-- adds its own counter deltas to the one-minute rows, so a row holds the cluster's sum.
-- `bucket` is the histogram bucket (0-16), -1 for counters and gauges; `agent` is ''
-- for series of no agent. Minute rows are folded into hour rows (resolution_s 3600).
CREATE TABLE metric_rollups (
    resolution_s INTEGER NOT NULL,
    metric       TEXT NOT NULL,
    agent        TEXT NOT NULL,
    bucket       INTEGER NOT NULL,
    bucket_start INTEGER NOT NULL,
    value        REAL NOT NULL,
    PRIMARY KEY (resolution_s, metric, agent, bucket, bucket_start)
) WITHOUT ROWID;
CREATE INDEX metric_rollups_time ON metric_rollups (resolution_s, bucket_start);

-- `spec` is the rule as given (JSON text); `state` the evaluator's memory of it (JSON).
CREATE TABLE alert_rules (
    id         BLOB PRIMARY KEY NOT NULL,
    spec       TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Firing and resolved events (ids are UUIDv7: id order is time order), with the
-- delivery state of their webhook notification (an outbox: survives restarts and
-- failover of the process that evaluates alerts).
CREATE TABLE alert_events (
    id              BLOB PRIMARY KEY NOT NULL,
    rule_id         BLOB NOT NULL,
    rule_name       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    agent           TEXT,
    state           TEXT NOT NULL,
    value           REAL NOT NULL,
    threshold       REAL NOT NULL,
    at              INTEGER NOT NULL,
    message         TEXT NOT NULL,
    webhook_url     TEXT,
    notify_status   TEXT NOT NULL,
    notify_attempts INTEGER NOT NULL DEFAULT 0,
    next_notify_at  INTEGER,
    notify_error    TEXT
);
CREATE INDEX alert_events_rule ON alert_events (rule_id, id);
CREATE INDEX alert_events_due ON alert_events (next_notify_at) WHERE notify_status = 'pending';

-- Full-text search over tasks (agent, input, output, error, log lines), filled in
-- batches by the search indexer, off the submit path. The FTS table keeps no copy of
-- the text; `task_search_docs` maps its rowids to tasks (an INTEGER PRIMARY KEY, so
-- VACUUM keeps them) and remembers which documents still wait for the task to finish.
CREATE VIRTUAL TABLE task_search USING fts5(
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TABLE task_search_docs (
    doc      INTEGER PRIMARY KEY,
    task_id  BLOB NOT NULL UNIQUE,
    complete INTEGER NOT NULL
);
CREATE INDEX task_search_incomplete ON task_search_docs (doc) WHERE complete = 0;
