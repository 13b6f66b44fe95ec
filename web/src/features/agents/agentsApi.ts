import { api } from '@/app/api';
import type { Agent, AgentSpec, Items } from '@/shared/api/types';

/** The editable part of an agent, as `PUT /agents/{name}` takes it. */
export function specOf(agent: Agent): AgentSpec {
  return {
    name: agent.name,
    kind: agent.kind,
    description: agent.description ?? null,
    version: agent.version,
    input_schema: agent.input_schema ?? null,
    output_schema: agent.output_schema ?? null,
    config: agent.config ?? {},
    retry: agent.retry,
    timeout_ms: agent.timeout_ms,
    concurrency: agent.concurrency ?? null,
    cache_ttl_ms: agent.cache_ttl_ms ?? null,
    fallback: agent.fallback ?? null,
    priority: agent.priority,
    ...(agent.concurrency_key != null ? { concurrency_key: agent.concurrency_key } : {}),
    ...(agent.concurrency_per_key != null ? { concurrency_per_key: agent.concurrency_per_key } : {}),
    ...(agent.rate_limit != null
      ? { rate_limit: { limit: agent.rate_limit.limit, period_s: agent.rate_limit.period_s, ...(agent.rate_limit.key ? { key: agent.rate_limit.key } : {}) } }
      : {}),
  };
}

export const agentsApi = api.injectEndpoints({
  endpoints: (build) => ({
    listAgents: build.query<Items<Agent>, void>({
      query: () => '/agents',
      providesTags: (r) => [{ type: 'Agent', id: 'LIST' }, ...(r?.items ?? []).map((a) => ({ type: 'Agent' as const, id: a.name }))],
    }),
    getAgent: build.query<Agent, string>({
      query: (name) => `/agents/${encodeURIComponent(name)}`,
      providesTags: (_r, _e, name) => [{ type: 'Agent', id: name }],
    }),
    createAgent: build.mutation<Agent, AgentSpec>({
      query: (body) => ({ url: '/agents', method: 'POST', body }),
      invalidatesTags: [{ type: 'Agent', id: 'LIST' }],
    }),
    updateAgent: build.mutation<Agent, AgentSpec>({
      query: (spec) => ({ url: `/agents/${encodeURIComponent(spec.name)}`, method: 'PUT', body: spec }),
      invalidatesTags: (_r, _e, spec) => [{ type: 'Agent', id: spec.name }, { type: 'Agent', id: 'LIST' }],
    }),
    deleteAgent: build.mutation<void, string>({
      query: (name) => ({ url: `/agents/${encodeURIComponent(name)}`, method: 'DELETE' }),
      invalidatesTags: [{ type: 'Agent', id: 'LIST' }],
    }),
  }),
});

export const { useListAgentsQuery, useGetAgentQuery, useCreateAgentMutation, useUpdateAgentMutation, useDeleteAgentMutation } = agentsApi;
