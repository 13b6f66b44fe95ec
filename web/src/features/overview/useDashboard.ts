// The overview's numbers: from the server's metrics API when it has one, otherwise computed
// here from recent tasks (kept live by events) and queue samples taken while the page is open.
import { useEffect, useMemo, useState } from 'react';
import { useGetCapabilitiesQuery } from '@/app/capabilities';
import { useListTasksQuery } from '@/features/tasks/tasksApi';
import { useListQueuesQuery } from '@/features/workers/workersApi';
import { useNow } from '@/shared/lib/useNow';
import { isNotAvailable } from '@/shared/api/errors';
import { agentSummaries, bucketStarts, queueSample, queueSeries, taskSeries, type QueueSample, type Window } from './metrics';
import { MIN_STEP_S, alignPoints, useGetSeriesQuery, type MetricName } from './metricsApi';

export interface Range {
  label: string;
  ms: number;
  step: number;
}

export const RANGES: Range[] = [
  { label: 'Last 15 minutes', ms: 15 * 60_000, step: 30_000 },
  { label: 'Last hour', ms: 60 * 60_000, step: 60_000 },
  { label: 'Last 6 hours', ms: 6 * 60 * 60_000, step: 5 * 60_000 },
];

const TASK_LIMIT = 500;
const SAMPLE_EVERY_MS = 5_000;

function useServerSeries(metric: MetricName, w: Window, agent: string | undefined, skip: boolean) {
  return useGetSeriesQuery(
    { metric, agent, from: Math.floor(w.from / 1000), to: Math.floor(w.to / 1000), step: Math.floor(w.step / 1000) },
    { skip, pollingInterval: 15_000, skipPollingIfUnfocused: true },
  );
}

export function useDashboard(range: Range, agent: string | undefined) {
  const now = Math.max(useNow(), 0);
  const caps = useGetCapabilitiesQuery();
  const [serverMetrics, setServerMetrics] = useState(true);
  const useServer = !!caps.data?.metrics && serverMetrics;
  // The server's series have one-minute resolution: its buckets are at least that wide.
  const step = useServer ? Math.max(range.step, MIN_STEP_S * 1000) : range.step;
  const to = Math.ceil(now / step) * step;
  const w: Window = useMemo(() => ({ from: to - range.ms, to, step }), [to, range, step]);
  const times = useMemo(() => bucketStarts(w), [w]);

  // Browser-side source: the tasks created in the window (re-anchored as it slides).
  const quarter = range.ms / 4;
  const anchor = new Date(Math.floor((now - range.ms) / quarter) * quarter).toISOString();
  const tasks = useListTasksQuery({ createdAfter: anchor, limit: TASK_LIMIT }, { skip: useServer || caps.isLoading });
  const queues = useListQueuesQuery(undefined, { pollingInterval: SAMPLE_EVERY_MS, skipPollingIfUnfocused: true });

  const [samples, setSamples] = useState<QueueSample[]>([]);
  useEffect(() => {
    if (!queues.data || !queues.fulfilledTimeStamp) return;
    const sample = queueSample(queues.data.items, queues.fulfilledTimeStamp);
    setSamples((prev) => [...prev.filter((s) => s.t >= Date.now() - RANGES[RANGES.length - 1]!.ms), sample]);
  }, [queues.data, queues.fulfilledTimeStamp]);

  const skip = !useServer;
  const submitted = useServerSeries('tasks_submitted', w, agent, skip);
  const finished = useServerSeries('tasks_finished', w, agent, skip);
  const failed = useServerSeries('tasks_failed', w, agent, skip);
  const depth = useServerSeries('queue_depth', w, agent, skip);
  const p50 = useServerSeries('latency_p50', w, agent, skip);
  const p95 = useServerSeries('latency_p95', w, agent, skip);
  const p99 = useServerSeries('latency_p99', w, agent, skip);
  const metricsMissing = [submitted, finished, failed].some((q) => isNotAvailable(q.error));
  useEffect(() => {
    if (metricsMissing) setServerMetrics(false);
  }, [metricsMissing]);

  const computed = useMemo(() => taskSeries(tasks.data?.items ?? [], w, agent), [tasks.data, w, agent]);
  const queueLevels = useMemo(() => queueSeries(samples, w, agent), [samples, w, agent]);
  const perAgent = useMemo(() => agentSummaries(tasks.data?.items ?? [], queues.data?.items ?? [], w), [tasks.data, queues.data, w]);

  if (useServer) {
    const fin = alignPoints(finished.data, times);
    const fail = alignPoints(failed.data, times);
    return {
      source: 'server' as const,
      times,
      window: w,
      loading: submitted.isLoading,
      error: submitted.error ?? null,
      throughput: { submitted: alignPoints(submitted.data, times), succeeded: fin.map((f, i) => (f === null ? null : f - (fail[i] ?? 0))), failed: fail },
      latency: { p50: alignPoints(p50.data, times), p95: alignPoints(p95.data, times), p99: alignPoints(p99.data, times) },
      queue: { ready: alignPoints(depth.data, times), running: times.map(() => null), scheduled: times.map(() => null) },
      failureRate: fin.map((f, i) => (f ? (fail[i] ?? 0) / f : null)),
      perAgent,
      truncated: false,
      queues,
    };
  }
  return {
    source: 'browser' as const,
    times,
    window: w,
    loading: tasks.isLoading || caps.isLoading,
    error: tasks.error ?? null,
    throughput: { submitted: computed.submitted, succeeded: computed.succeeded, failed: computed.failed },
    latency: { p50: computed.p50, p95: computed.p95, p99: computed.p99 },
    queue: queueLevels,
    failureRate: computed.failureRate,
    perAgent,
    truncated: !!tasks.data?.next_cursor,
    queues,
  };
}
