-- A blob's row, locked until the transaction ends (SQLite's single writer serialises
-- these transactions).
SELECT object_key FROM blobs WHERE sha256 = $1
