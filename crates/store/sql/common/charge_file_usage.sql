-- Adds a file's bytes to its owner's usage unless that passes the quota ($3): no row
-- changes then.
INSERT INTO file_usage (owner_key, bytes) VALUES ($1, $2)
ON CONFLICT (owner_key) DO UPDATE SET bytes = file_usage.bytes + excluded.bytes
WHERE file_usage.bytes + excluded.bytes <= $3
