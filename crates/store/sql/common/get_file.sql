SELECT id, name, size, content_type, sha256, owner_id, task_id, created_at
FROM files WHERE id = $1
