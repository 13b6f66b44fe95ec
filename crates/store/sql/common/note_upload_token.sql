UPDATE uploads SET token = $2 WHERE id = $1
