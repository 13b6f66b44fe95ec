-- Flow control (see switchyard_core::flow and ::schedule).
-- flow_key: the key a task shares per-key concurrency and rate limits under (NULL: none).
-- fair_key: the key dispatch takes turns by within a priority level: 'k:' || flow_key,
-- else 'u:' || owner_id ('u:' without an owner).
ALTER TABLE tasks ADD COLUMN flow_key TEXT;
ALTER TABLE tasks ADD COLUMN fair_key TEXT NOT NULL DEFAULT 'u:';
ALTER TABLE tasks ADD COLUMN schedule TEXT;
ALTER TABLE tasks ADD COLUMN scheduled_for INTEGER;
UPDATE tasks SET fair_key = 'u:' || coalesce(owner_id, '')
WHERE status IN ('queued', 'retrying', 'running', 'waiting');

-- The queue by turns: per agent and priority level, each fair key's oldest first.
CREATE INDEX tasks_fair ON tasks (agent, priority DESC, fair_key, id)
    WHERE status IN ('queued', 'retrying');
DROP INDEX tasks_ready;
-- Running tasks per flow key, for concurrency_per_key.
CREATE INDEX tasks_running_key ON tasks (agent, flow_key)
    WHERE status = 'running' AND flow_key IS NOT NULL;
CREATE INDEX tasks_schedule ON tasks (schedule, scheduled_for) WHERE schedule IS NOT NULL;

CREATE TABLE schedules (
    name       TEXT PRIMARY KEY NOT NULL,
    -- The ScheduleSpec as JSON.
    spec       TEXT NOT NULL,
    owner_id   TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- The tick it waits for; NULL while paused or when it never fires again.
    next_at    INTEGER
);
CREATE INDEX schedules_due ON schedules (next_at) WHERE next_at IS NOT NULL;

-- Rate limiters without Redis, per key (µs since the epoch): the GCRA theoretical arrival
-- time, and the end of a pause a worker's rate_limited error asked for.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    tat INTEGER NOT NULL,
    paused_until INTEGER NOT NULL DEFAULT 0
);
