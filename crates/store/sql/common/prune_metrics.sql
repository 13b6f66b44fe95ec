DELETE FROM metric_rollups WHERE resolution_s = $1 AND bucket_start < $2
