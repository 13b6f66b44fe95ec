import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore } from '@/test/utils';
import { server, useMockServer } from '@/test/msw';
import type { AgentReport } from '@/shared/api/types';
import { ReportsPage } from './ReportsPage';

useMockServer();

function row(agent: string, over: Partial<AgentReport> = {}): AgentReport {
  return {
    agent,
    tasks: 10,
    succeeded: 8,
    failed: 1,
    dead: 1,
    cancelled: 0,
    unfinished: 0,
    success_rate: 0.8,
    latency_p50_ms: 120,
    latency_p95_ms: 900,
    latency_p99_ms: 1500,
    retries: 3,
    fallbacks: 1,
    cached: 2,
    cache_hit_rate: 0.2,
    tokens: null,
    ...over,
  };
}

function serve(agents: AgentReport[], asked: URLSearchParams[] = []) {
  server.use(
    http.get('*/api/v1/reports/agents', ({ request }) => {
      asked.push(new URL(request.url).searchParams);
      return HttpResponse.json({ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', agents });
    }),
  );
}

const headers = () => within(screen.getByTestId('agents-report')).getAllByRole('columnheader').map((h) => h.textContent);

describe('ReportsPage', () => {
  it('has no token or cost columns while no agent reported usage', async () => {
    serve([row('echo'), row('slow')]);
    renderWithStore(<ReportsPage />, { store: signedInStore('viewer') });
    expect(await screen.findByRole('link', { name: 'echo' })).toHaveAttribute('href', '/tasks?agent=echo');
    expect(headers()).toEqual(['Agent', 'Tasks', 'Succeeded', 'Failed', 'Success rate', 'p50', 'p95', 'Retries', 'Cache hits']);
    const echo = screen.getByRole('row', { name: /echo/ });
    expect(echo).toHaveTextContent('80 %');
    expect(echo).toHaveTextContent('120 ms');
  });

  it('adds tokens (with the prompt/completion split) and cost when rows have them', async () => {
    serve([
      row('writer', { tokens: 1545, prompt_tokens: 1200, completion_tokens: 345, cost: 0.0123 }),
      row('free-llm', { tokens: 50, prompt_tokens: 40, completion_tokens: 10, cost: null }),
      row('echo'),
    ]);
    renderWithStore(<ReportsPage />, { store: signedInStore('viewer') });
    await screen.findByRole('link', { name: 'writer' });
    expect(headers()).toEqual(['Agent', 'Tasks', 'Succeeded', 'Failed', 'Success rate', 'p50', 'p95', 'Retries', 'Cache hits', 'Tokens', 'Cost']);
    const cells = (agent: string) => within(screen.getByRole('row', { name: new RegExp(agent) })).getAllByRole('cell').map((c) => c.textContent);
    expect(cells('writer').slice(-2)).toEqual(['1,5451,200 prompt, 345 completion', '0.0123']);
    expect(cells('free-llm').slice(-2)).toEqual(['5040 prompt, 10 completion', '—']);
    expect(cells('echo').slice(-2)).toEqual(['—', '—']);
  });

  it('shows tokens without a cost column when no agent has prices', async () => {
    serve([row('writer', { tokens: 12, prompt_tokens: 10, completion_tokens: 2 })]);
    renderWithStore(<ReportsPage />, { store: signedInStore('viewer') });
    await screen.findByRole('link', { name: 'writer' });
    expect(headers().slice(-1)).toEqual(['Tokens']);
  });

  it('asks for the period picked', async () => {
    const asked: URLSearchParams[] = [];
    serve([row('echo')], asked);
    renderWithStore(<ReportsPage />, { store: signedInStore('viewer') });
    await screen.findByRole('link', { name: 'echo' });
    await userEvent.selectOptions(screen.getByLabelText('Period'), 'Last 7 days');
    await waitFor(() => expect(asked).toHaveLength(2));
    const span = (p: URLSearchParams) => (Date.now() - Date.parse(p.get('from')!)) / 3_600_000;
    expect(Math.round(span(asked[0]!))).toBe(24);
    expect(Math.round(span(asked[1]!))).toBe(24 * 7);
  });
});
