-- Sessions in the database: the fallback when the cache (Redis) is unreachable, and a
-- durable copy that survives a Redis restart. `used_hashes` is a JSON array (text).
CREATE TABLE sessions (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL,
    created_at        bigint NOT NULL,
    expires_at        bigint NOT NULL,
    last_refreshed_at bigint NOT NULL,
    user_agent        text,
    ip                text,
    refresh_hash      text NOT NULL,
    used_hashes       text NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Event-bus messages too large for a NOTIFY payload (8000 bytes): the notification
-- carries the row id, listeners read the row. Pruned by housekeeping.
CREATE TABLE bus_messages (
    id         bigserial PRIMARY KEY,
    payload    text NOT NULL,
    created_at bigint NOT NULL
);
