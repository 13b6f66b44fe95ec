// The per-agent report (`GET /api/v1/reports/agents`): volume, outcomes, latency, retries,
// cache hits and, for agents whose outputs report usage (the `llm` kind), tokens and cost.
import { api } from '@/app/api';
import type { AgentReport, Report } from '@/shared/api/types';

export interface ReportArgs {
  /** RFC 3339: tasks submitted from then on. */
  from: string;
  /** RFC 3339; the server's default is now. */
  to?: string;
}

export const reportsApi = api.injectEndpoints({
  endpoints: (build) => ({
    getAgentsReport: build.query<Report, ReportArgs>({
      query: ({ from, to }) => ({ url: '/reports/agents', params: to ? { from, to } : { from } }),
    }),
  }),
});

export const { useGetAgentsReportQuery } = reportsApi;

/**
 * Whether any row has token counts, and any a cost: the table shows those columns only then.
 * A row's `tokens` (and `prompt_tokens`, `completion_tokens`) are absent or null when no task
 * of its agent reported usage, its `cost` when none had prices.
 */
export function usageColumns(rows: readonly AgentReport[]): { tokens: boolean; cost: boolean } {
  return {
    tokens: rows.some((r) => typeof r.tokens === 'number'),
    cost: rows.some((r) => typeof r.cost === 'number'),
  };
}
