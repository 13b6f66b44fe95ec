-- A blob's row, locked until the transaction ends: an upload of the same bytes that
-- locked it first commits its record before the collector looks again.
SELECT object_key FROM blobs WHERE sha256 = $1
FOR UPDATE
