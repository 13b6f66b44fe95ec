SELECT object_key FROM blobs WHERE sha256 = $1
