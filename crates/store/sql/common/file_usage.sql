SELECT bytes FROM file_usage WHERE owner_key = $1
