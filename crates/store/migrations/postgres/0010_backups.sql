-- The same logical schema as migrations/sqlite/0010_backups.sql.
CREATE TABLE backups (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    target      text NOT NULL,
    trigger     text NOT NULL,
    status      text NOT NULL,
    started_at  bigint NOT NULL,
    alive_at    bigint NOT NULL,
    finished_at bigint,
    size_bytes  bigint,
    tasks       bigint,
    error       text
);
CREATE INDEX backups_started ON backups (started_at);
