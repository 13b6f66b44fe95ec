-- The backups servers took or are taking (GET /api/v1/backups, the backup metrics and the
-- backup_age alert). Not itself in backups.
CREATE TABLE backups (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    target      TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    -- A running backup's last sign of life: without one for a minute it was interrupted.
    alive_at    INTEGER NOT NULL,
    finished_at INTEGER,
    size_bytes  INTEGER,
    tasks       INTEGER,
    error       TEXT
);
CREATE INDEX backups_started ON backups (started_at);
