INSERT INTO task_signals (task_id, id, name, payload, sent_at) VALUES ($1, $2, $3, $4, $5)
