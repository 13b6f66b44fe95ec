UPDATE tasks SET seq = CASE WHEN numbered > seq THEN numbered ELSE seq END + 1 WHERE id = $1 RETURNING seq
