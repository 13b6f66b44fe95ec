// The server's metric time series (`/api/v1/metrics/series`), on servers that have it.
import { api } from '@/app/api';

export type MetricName = 'tasks_submitted' | 'tasks_finished' | 'tasks_failed' | 'queue_depth' | 'latency_p50' | 'latency_p95' | 'latency_p99';

export interface SeriesArgs {
  metric: MetricName;
  agent?: string;
  /** Unix seconds. */
  from: number;
  to: number;
  step: number;
}

export interface MetricSeries {
  metric: string;
  step: number;
  points: { t: number; v: number }[];
}

export const metricsApi = api.injectEndpoints({
  endpoints: (build) => ({
    getSeries: build.query<MetricSeries, SeriesArgs>({
      query: ({ agent, ...rest }) => ({ url: '/metrics/series', params: agent ? { ...rest, agent } : rest }),
      providesTags: ['Metrics'],
    }),
  }),
});

export const { useGetSeriesQuery } = metricsApi;

/** Server points onto the dashboard's buckets (null where the server had none). */
export function alignPoints(series: MetricSeries | undefined, times: number[]): (number | null)[] {
  const byT = new Map((series?.points ?? []).map((p) => [p.t * 1000, p.v]));
  return times.map((t) => byT.get(t) ?? null);
}
