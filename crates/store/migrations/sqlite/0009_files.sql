-- Files (see switchyard_core::files). A blob is one stored copy of some bytes, named by
-- their SHA-256; file records point at blobs, and a blob goes once none does.
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY NOT NULL,
    -- Where the object store keeps the bytes (a server-made name, never a client's).
    object_key TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when the last file using it went: the collector removes it.
    unused_since INTEGER
);
CREATE INDEX blobs_unused ON blobs (unused_since) WHERE unused_since IS NOT NULL;

CREATE TABLE files (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    owner_id     TEXT,
    -- Set on artifacts: the task whose agent uploaded the file.
    task_id      TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, id);
CREATE INDEX files_task ON files (task_id, id) WHERE task_id IS NOT NULL;
CREATE INDEX files_sha256 ON files (sha256);

-- Bytes of files per owner ('' for none), for the quota.
CREATE TABLE file_usage (
    owner_key TEXT PRIMARY KEY NOT NULL,
    bytes     INTEGER NOT NULL
);

-- Uploads being written: what to remove if one never finishes.
CREATE TABLE uploads (
    id         TEXT PRIMARY KEY NOT NULL,
    object_key TEXT NOT NULL,
    -- What the object store needs to abort it (an S3 multipart upload id).
    token      TEXT,
    started_at INTEGER NOT NULL
);
CREATE INDEX uploads_started ON uploads (started_at);
