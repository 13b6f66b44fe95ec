UPDATE blobs SET unused_since = $2
WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = $1)
