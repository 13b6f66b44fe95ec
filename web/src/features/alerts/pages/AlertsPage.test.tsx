import type { MiddlewareAPI } from '@reduxjs/toolkit';
import { act, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import { alertEvent, rule } from '@/test/alerts';
import type { AlertRule } from '@/shared/api/types';
import { applyAlertEventToCache } from '../liveAlerts';
import { AlertsPage } from './AlertsPage';

useMockServer();

function mockAlerts(initial: AlertRule[] = [rule('r1', 'queue backlog', { agent: 'echo' })]) {
  let rules = [...initial];
  const posted: unknown[] = [];
  const deleted: string[] = [];
  server.use(
    http.get('*/api/v1/alerts/rules', () => HttpResponse.json({ items: rules })),
    http.get('*/api/v1/alerts/events', () => HttpResponse.json({ items: [alertEvent('e0', 'r1', 'resolved', new Date(Date.now() - 120_000).toISOString())], next_cursor: null })),
    http.get('*/api/v1/agents', () => HttpResponse.json({ items: [{ name: 'echo' }, { name: 'fail' }] })),
    http.post('*/api/v1/alerts/rules', async ({ request }) => {
      const body = (await request.json()) as Record<string, unknown>;
      posted.push(body);
      if (body.kind === 'no_worker' && !body.agent) {
        return HttpResponse.json(errorBody('validation_failed', 'a no_worker rule needs an agent', { problems: ['name must be 1-200 characters', 'a no_worker rule needs an agent'] }), { status: 422 });
      }
      const created = rule('r2', String(body.name), body as Partial<AlertRule>);
      rules = [...rules, created];
      return HttpResponse.json(created, { status: 201 });
    }),
    http.delete('*/api/v1/alerts/rules/:id', ({ params }) => {
      deleted.push(String(params.id));
      rules = rules.filter((r) => r.id !== params.id);
      return new HttpResponse(null, { status: 204 });
    }),
  );
  return { posted, deleted };
}

describe('AlertsPage', () => {
  it('lists rules with their state and the recent events', async () => {
    mockAlerts([rule('r1', 'queue backlog', { agent: 'echo' }), rule('r3', 'failing', { kind: 'failure_rate', threshold: 0.05, state: { status: 'firing', since: '2026-01-01T00:00:00Z', value: 0.25 } })]);
    renderWithStore(<AlertsPage />);
    const rules = await screen.findByRole('table', { name: 'Alert rules' });
    const backlog = within(rules).getByText('queue backlog').closest('tr')!;
    expect(backlog).toHaveTextContent('Queue depth');
    expect(backlog).toHaveTextContent('echo');
    expect(backlog).toHaveTextContent('> 10 tasks');
    expect(within(backlog).getByText('OK')).toBeInTheDocument();
    const failing = within(rules).getByText('failing').closest('tr')!;
    expect(failing).toHaveTextContent('all agents');
    expect(failing).toHaveTextContent('> 5 %');
    expect(within(failing).getByText('Firing')).toBeInTheDocument();
    expect(failing).toHaveTextContent('25 %');
    expect(screen.getByTestId('firing-count')).toHaveTextContent('1 firing');
    const events = await screen.findByRole('table', { name: 'Recent alert events' });
    expect(within(events).getByText('Resolved')).toBeInTheDocument();
    expect(within(events).getByText('resolved e0')).toBeInTheDocument();
  });

  it('lets an admin create a rule and shows the server’s problems on the fields', async () => {
    const u = userEvent.setup();
    const { posted } = mockAlerts();
    renderWithStore(<AlertsPage />);
    await screen.findByRole('table', { name: 'Alert rules' });

    // Server-side validation: a no_worker rule without an agent, and no name.
    await u.selectOptions(screen.getByLabelText('Kind'), 'no_worker');
    await u.click(screen.getByRole('button', { name: 'Create rule' }));
    expect(await screen.findByText('a no_worker rule needs an agent')).toBeInTheDocument();
    expect(screen.getByLabelText('Agent')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText('Name')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByText('name must be 1-200 characters')).toBeInTheDocument();

    // A local problem: not sent.
    await u.clear(screen.getByLabelText('Window (s)'));
    await u.type(screen.getByLabelText('Window (s)'), '2.5');
    await u.click(screen.getByRole('button', { name: 'Create rule' }));
    expect(await screen.findByText('must be a whole number of seconds')).toBeInTheDocument();
    expect(posted).toHaveLength(1);

    await u.clear(screen.getByLabelText('Window (s)'));
    await u.type(screen.getByLabelText('Window (s)'), '120');
    await u.type(screen.getByLabelText('Name'), 'fail has no worker');
    await u.selectOptions(screen.getByLabelText('Agent'), 'fail');
    await u.click(screen.getByRole('button', { name: 'Create rule' }));
    expect(await screen.findByText('Created rule fail has no worker.')).toBeInTheDocument();
    expect(posted.at(-1)).toEqual({ name: 'fail has no worker', kind: 'no_worker', agent: 'fail', threshold: 0, window_s: 120, for_s: 0 });
    expect(await within(screen.getByRole('table', { name: 'Alert rules' })).findByText('fail has no worker')).toBeInTheDocument();
    expect(screen.getByLabelText('Agent')).not.toHaveAttribute('aria-invalid');
  });

  it('deletes a rule only after confirmation', async () => {
    const u = userEvent.setup();
    const { deleted } = mockAlerts();
    renderWithStore(<AlertsPage />);
    await u.click(await screen.findByRole('button', { name: 'Delete rule queue backlog' }));
    const dialog = screen.getByRole('dialog');
    await u.click(within(dialog).getByRole('button', { name: 'Keep it' }));
    expect(deleted).toEqual([]);
    await u.click(screen.getByRole('button', { name: 'Delete rule queue backlog' }));
    await u.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete rule' }));
    expect(await screen.findByText('No alert rules yet.')).toBeInTheDocument();
    expect(deleted).toEqual(['r1']);
  });

  it.each(['viewer', 'operator'] as const)('is read-only for a %s', async (role) => {
    mockAlerts();
    renderWithStore(<AlertsPage />, { store: signedInStore(role) });
    await screen.findByRole('table', { name: 'Alert rules' });
    expect(screen.queryByRole('button', { name: 'Create rule' })).toBeNull();
    expect(screen.queryByRole('button', { name: /Delete/ })).toBeNull();
    expect(screen.getByText(/Only admins create or delete rules/)).toBeInTheDocument();
  });

  it('shows live events as they arrive', async () => {
    mockAlerts();
    const store = signedInStore('viewer');
    renderWithStore(<AlertsPage />, { store });
    const events = await screen.findByRole('table', { name: 'Recent alert events' });
    await within(events).findByText('resolved e0');
    act(() => applyAlertEventToCache(alertEvent('e5', 'r1', 'firing', new Date().toISOString()), store as unknown as MiddlewareAPI));
    expect(await within(events).findByText('firing e5')).toBeInTheDocument();
    const row = within(screen.getByRole('table', { name: 'Alert rules' })).getByText('queue backlog').closest('tr')!;
    expect(await within(row).findByText('Firing')).toBeInTheDocument();
    expect(screen.getByTestId('firing-count')).toHaveTextContent('1 firing');
  });

  it('says so when the server has no alerting', async () => {
    server.use(
      http.get('*/api/v1/alerts/rules', () => HttpResponse.json(errorBody('route_not_found', 'no such endpoint'), { status: 404 })),
      http.get('*/api/v1/alerts/events', () => HttpResponse.json(errorBody('route_not_found', 'no such endpoint'), { status: 404 })),
    );
    renderWithStore(<AlertsPage />, { store: signedInStore('viewer') });
    expect(await screen.findByText('Alerting is not available on this server.')).toBeInTheDocument();
  });

  it('shows an error with a retry when the rules cannot be loaded', async () => {
    mockAlerts();
    server.use(http.get('*/api/v1/alerts/rules', () => HttpResponse.json(errorBody('internal', 'boom'), { status: 500 })));
    renderWithStore(<AlertsPage />, { store: signedInStore('viewer') });
    expect(await screen.findByText(/Could not load alert rules/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });
});
