DELETE FROM files WHERE id = $1
RETURNING id, name, size, content_type, sha256, owner_id, task_id, created_at
