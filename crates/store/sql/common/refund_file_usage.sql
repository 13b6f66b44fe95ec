UPDATE file_usage SET bytes = CASE WHEN bytes > $2 THEN bytes - $2 ELSE 0 END
WHERE owner_key = $1
