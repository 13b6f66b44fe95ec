-- Compare-and-set: only the server that still sees the tick it fired moves it on.
UPDATE schedules SET next_at = $3 WHERE name = $1 AND next_at = $2
