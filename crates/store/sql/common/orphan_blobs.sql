SELECT sha256, object_key FROM blobs
WHERE unused_since IS NOT NULL
ORDER BY unused_since
LIMIT $1
