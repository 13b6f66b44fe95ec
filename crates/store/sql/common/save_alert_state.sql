UPDATE alert_rules SET state = $2 WHERE id = $1
