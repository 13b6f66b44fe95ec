-- Sessions in the database: the fallback when the cache (Redis) is unreachable, and a
-- durable copy that survives a Redis restart. `used_hashes` is a JSON array (text).
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY NOT NULL,
    user_id           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    last_refreshed_at INTEGER NOT NULL,
    user_agent        TEXT,
    ip                TEXT,
    refresh_hash      TEXT NOT NULL,
    used_hashes       TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
