-- $1: JSON object {agent: ms}: an attempt of that agent started before it is past its
-- timeout; $2: the same for agents $1 does not name. Agent names hold no quote.
SELECT id, agent, attempt, attempt - attempt_base AS attempts_in_run, worker_id, owner_id, input, parent_id, trace_id
FROM tasks
WHERE status = 'running'
  AND started_at < coalesce(json_extract($1, '$."' || agent || '"'), $2)
LIMIT $3
