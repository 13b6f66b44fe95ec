-- The blob of these bytes: the upload's object if they are new, else the one stored
-- before (used again). The row is locked either way (ON CONFLICT DO UPDATE), so the
-- collector cannot take it before the new record commits.
INSERT INTO blobs (sha256, object_key, size, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (sha256) DO UPDATE SET unused_since = NULL
RETURNING object_key
