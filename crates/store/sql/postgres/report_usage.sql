-- Language-model usage of the tasks submitted in [$1, $2), as task-id bounds (UUIDv7), per
-- agent: the succeeded tasks whose output reports it as `usage` {prompt_tokens,
-- completion_tokens, cost?} (the llm kind's output; any agent may use the same shape).
SELECT agent,
       count(*) AS tasks,
       CAST(round(sum(CASE WHEN jsonb_typeof(output -> 'usage' -> 'prompt_tokens') = 'number'
                           THEN (output -> 'usage' ->> 'prompt_tokens')::numeric ELSE 0 END)) AS BIGINT)
           AS prompt_tokens,
       CAST(round(sum(CASE WHEN jsonb_typeof(output -> 'usage' -> 'completion_tokens') = 'number'
                           THEN (output -> 'usage' ->> 'completion_tokens')::numeric ELSE 0 END)) AS BIGINT)
           AS completion_tokens,
       sum(CASE WHEN jsonb_typeof(output -> 'usage' -> 'cost') = 'number'
                THEN (output -> 'usage' ->> 'cost')::double precision END) AS cost
FROM tasks
WHERE id >= $1 AND id < $2 AND status = 'succeeded'
  AND jsonb_typeof(output -> 'usage') = 'object'
GROUP BY agent
ORDER BY agent
