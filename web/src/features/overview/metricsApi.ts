// The server's metric time series (`GET /api/v1/metrics/series`): points per step from the
// stored one-minute rollups, percentiles from stored histograms. Names are the server's
// (`GET /api/v1/metrics/series/names`); the shape is the generated `Series` type.
import { api } from '@/app/api';
import type { MetricSeries } from '@/shared/api/types';

export type MetricName =
  | 'tasks_submitted'
  | 'tasks_started'
  | 'tasks_finished'
  | 'tasks_succeeded'
  | 'tasks_failed'
  | 'tasks_dead'
  | 'tasks_cancelled'
  | 'retries'
  | 'fallbacks'
  | 'cache_hits'
  | 'cache_misses'
  | 'failure_rate'
  | 'cache_hit_rate'
  | 'queue_depth'
  | 'queue_ready'
  | 'queue_running'
  | 'oldest_task_age'
  | 'workers'
  | 'latency_p50'
  | 'latency_p95'
  | 'latency_p99'
  | 'wait_p50'
  | 'wait_p95'
  | 'wait_p99'
  | 'run_p50'
  | 'run_p95'
  | 'run_p99';

/** The server's resolution: a step is at least one minute. */
export const MIN_STEP_S = 60;

export interface SeriesArgs {
  metric: MetricName;
  agent?: string;
  /** Unix seconds (the server also accepts RFC 3339). */
  from: number;
  to: number;
  /** Seconds, at least {@link MIN_STEP_S}. */
  step: number;
}

export type { MetricSeries };

export const metricsApi = api.injectEndpoints({
  endpoints: (build) => ({
    getSeries: build.query<MetricSeries, SeriesArgs>({
      query: ({ agent, step, ...rest }) => {
        const params = { ...rest, step: Math.max(MIN_STEP_S, step) };
        return { url: '/metrics/series', params: agent ? { ...params, agent } : params };
      },
      providesTags: ['Metrics'],
    }),
  }),
});

export const { useGetSeriesQuery } = metricsApi;

/** Server points onto the dashboard's buckets (null where the server had none). */
export function alignPoints(series: Pick<MetricSeries, 'points'> | undefined, times: number[]): (number | null)[] {
  const byT = new Map((series?.points ?? []).map((p) => [p.t * 1000, p.v ?? null]));
  return times.map((t) => byT.get(t) ?? null);
}
