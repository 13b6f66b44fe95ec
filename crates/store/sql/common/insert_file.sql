INSERT INTO files (id, name, size, content_type, sha256, owner_id, task_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
