import { describe, expect, it } from 'vitest';
import type { Task } from '@/shared/api/types';
import { agentSummaries, percentile, queueSample, queueSeries, taskSeries, type Window } from './metrics';
import { alignPoints } from './metricsApi';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function task(agent: string, status: Task['status'], created: number, finished: number | null): Task {
  return {
    id: `${agent}-${created}`,
    agent,
    status,
    priority: 0,
    input: {},
    cached: false,
    run_at: iso(created),
    created_at: iso(created),
    updated_at: iso(finished ?? created),
    finished_at: finished === null ? null : iso(finished),
    attempts: [],
    cancel_requested: false,
    seq: 1,
  };
}

const w: Window = { from: T0, to: T0 + 120_000, step: 60_000 };

describe('dashboard metrics computed in the browser', () => {
  const tasks = [
    task('echo', 'succeeded', 0, 1),
    task('echo', 'succeeded', 10, 14),
    task('fail', 'dead', 20, 21),
    task('slow', 'running', 70, null),
    task('slow', 'cancelled', 80, 90),
    task('echo', 'succeeded', 100, 102),
  ];

  it('buckets submissions, outcomes, failure rate and latency percentiles', () => {
    const s = taskSeries(tasks, w);
    expect(s.submitted).toEqual([3, 3]);
    expect(s.succeeded).toEqual([2, 1]);
    expect(s.failed).toEqual([1, 0]);
    expect(s.failureRate).toEqual([1 / 3, 0]);
    expect(s.p50).toEqual([1000, 2000]);
    expect(s.p99).toEqual([4000, 2000]);
    expect(taskSeries(tasks, w, 'fail').submitted).toEqual([1, 0]);
  });

  it('summarises per agent with the queue counts', () => {
    const rows = agentSummaries(tasks, [{ agent: 'slow', ready: 2, scheduled: 1, running: 1, oldest_ready_at: null }], w);
    expect(rows.map((r) => [r.agent, r.finished, r.failed, r.ready])).toEqual([
      ['echo', 3, 0, 0],
      ['fail', 1, 1, 0],
      ['slow', 0, 0, 2],
    ]);
    expect(rows[1]!.failureRate).toBe(1);
  });

  it('keeps the last queue sample per bucket', () => {
    const samples = [
      queueSample([{ agent: 'a', ready: 5, scheduled: 0, running: 1 }], T0 + 1000),
      queueSample([{ agent: 'a', ready: 3, scheduled: 0, running: 2 }], T0 + 2000),
    ];
    expect(queueSeries(samples, w).ready).toEqual([3, null]);
    expect(queueSeries(samples, w, 'b').running).toEqual([0, null]);
  });

  it('computes nearest-rank percentiles and aligns server points', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 95)).toBe(4);
    expect(alignPoints({ points: [{ t: T0 / 1000 + 60, v: 7 }, { t: T0 / 1000, v: null }] }, [T0, T0 + 60_000])).toEqual([null, 7]);
  });
});
