-- Language-model usage of the tasks submitted in [$1, $2), as task-id bounds (UUIDv7), per
-- agent: the succeeded tasks whose output reports it as `usage` {prompt_tokens,
-- completion_tokens, cost?} (the llm kind's output; any agent may use the same shape).
SELECT agent,
       count(*) AS tasks,
       CAST(sum(CASE WHEN json_type(output, '$.usage.prompt_tokens') IN ('integer', 'real')
                     THEN output ->> '$.usage.prompt_tokens' ELSE 0 END) AS INTEGER) AS prompt_tokens,
       CAST(sum(CASE WHEN json_type(output, '$.usage.completion_tokens') IN ('integer', 'real')
                     THEN output ->> '$.usage.completion_tokens' ELSE 0 END) AS INTEGER) AS completion_tokens,
       sum(CASE WHEN json_type(output, '$.usage.cost') IN ('integer', 'real')
                THEN output ->> '$.usage.cost' END) AS cost
FROM tasks
WHERE id >= $1 AND id < $2 AND status = 'succeeded'
  AND json_type(output, '$.usage') = 'object'
GROUP BY agent
ORDER BY agent
