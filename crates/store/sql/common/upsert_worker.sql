INSERT INTO workers (id, name, kind, agents, slots, slots_in_use, version, host, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, kind = excluded.kind, agents = excluded.agents, slots = excluded.slots,
    slots_in_use = excluded.slots_in_use, version = excluded.version, host = excluded.host,
    heartbeat_at = excluded.heartbeat_at
