-- How many steps the task holds, and the status of the one named $2 (NULL: new).
SELECT count(*) AS steps, max(CASE WHEN name = $2 THEN status END) AS existing
FROM task_steps WHERE task_id = $1
