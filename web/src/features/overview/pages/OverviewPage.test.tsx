import { screen, within } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore } from '@/test/utils';
import { server, useMockServer } from '@/test/msw';
import { OverviewPage } from './OverviewPage';

useMockServer();

const now = Date.now();
const iso = (msAgo: number) => new Date(now - msAgo).toISOString();

function common(paths: Record<string, unknown>) {
  server.use(
    http.get('*/api/openapi.json', () => HttpResponse.json({ paths })),
    http.get('*/api/v1/agents', () => HttpResponse.json({ items: [] })),
    http.get('*/api/v1/workers', () =>
      HttpResponse.json({ items: [{ id: 'w', name: 'builtin', kind: 'builtin', agents: ['echo'], slots: 8, slots_in_use: 3, version: '1', started_at: iso(1e5), heartbeat_at: iso(1000) }] }),
    ),
    http.get('*/api/v1/queues', () => HttpResponse.json({ items: [{ agent: 'echo', ready: 4, scheduled: 1, running: 2, oldest_ready_at: null }] })),
  );
}

const task = (id: string, status: string, createdAgo: number, finishedAgo: number | null) => ({
  id,
  agent: 'echo',
  status,
  priority: 0,
  input: {},
  cached: false,
  run_at: iso(createdAgo),
  created_at: iso(createdAgo),
  updated_at: iso(createdAgo),
  finished_at: finishedAgo === null ? null : iso(finishedAgo),
  attempts: [],
  cancel_requested: false,
  seq: 3,
});

describe('OverviewPage', () => {
  it('computes the numbers from tasks and queues when the server has no metrics API', async () => {
    common({ '/api/v1/tasks': { get: { parameters: [] } } });
    let metricsCalls = 0;
    server.use(
      http.get('*/api/v1/metrics/series', () => {
        metricsCalls++;
        return HttpResponse.json({}, { status: 404 });
      }),
      http.get('*/api/v1/tasks', () =>
        HttpResponse.json({ items: [task('a', 'succeeded', 60_000, 59_000), task('b', 'dead', 50_000, 49_000), task('c', 'running', 1_000, null)], next_cursor: null }),
      ),
    );
    renderWithStore(<OverviewPage />);
    const stats = screen.getByRole('region', { name: 'Now' });
    expect(await within(stats).findByText('50 %')).toBeInTheDocument();
    expect(within(stats).getByText('5')).toBeInTheDocument(); // waiting: ready + scheduled
    expect(within(stats).getByText('3 / 8')).toBeInTheDocument();
    expect(screen.getByText(/this server has no metrics API yet/)).toBeInTheDocument();
    expect(screen.getByRole('img', { name: 'Throughput (tasks per 30 s) chart' })).toBeInTheDocument();
    expect(metricsCalls).toBe(0);
  });

  it('uses the server’s metric series when it has them', async () => {
    common({ '/api/v1/tasks': { get: { parameters: [] } }, '/api/v1/metrics/series': { get: {} } });
    const asked: string[] = [];
    server.use(
      http.get('*/api/v1/metrics/series', ({ request }) => {
        const metric = new URL(request.url).searchParams.get('metric')!;
        asked.push(metric);
        const t = Math.floor(now / 60_000) * 60;
        const v = metric === 'tasks_finished' ? 10 : metric === 'tasks_failed' ? 1 : 2;
        return HttpResponse.json({ metric, from: t - 900, to: t, step: 60, unit: 'tasks', points: [{ t: t - 60, v }] });
      }),
    );
    renderWithStore(<OverviewPage />);
    expect(await screen.findByText('Live numbers from the server’s metrics.')).toBeInTheDocument();
    expect(await within(screen.getByRole('region', { name: 'Now' })).findByText('10 %')).toBeInTheDocument();
    expect(asked.sort()).toEqual(['latency_p50', 'latency_p95', 'latency_p99', 'queue_depth', 'tasks_failed', 'tasks_finished', 'tasks_submitted']);
  });
});
