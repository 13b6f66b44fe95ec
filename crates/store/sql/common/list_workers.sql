SELECT id, name, kind, agents, slots, slots_in_use, version, host, started_at, heartbeat_at
FROM workers WHERE heartbeat_at >= $1
ORDER BY name, id
