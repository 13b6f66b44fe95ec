SELECT min(next_at) FROM schedules WHERE next_at IS NOT NULL
