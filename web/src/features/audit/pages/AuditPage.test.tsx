import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore } from '@/test/utils';
import { errorBody, server, useMockServer } from '@/test/msw';
import { AuditPage } from './AuditPage';

useMockServer();

const entry = (n: number, extra: Record<string, unknown> = {}) => ({
  id: `0190000${n}-0000-7000-8000-000000000000`,
  at: `2026-01-0${n}T10:00:00.000Z`,
  actor: { name: 'admin@example.com', user_id: '01900000-0000-7000-8000-000000000001' },
  action: 'agent.create',
  target: { kind: 'agent', id: `agent-${n}` },
  outcome: 'success',
  request_id: `req-${n}`,
  client_addr: '192.0.2.7',
  ...extra,
});

describe('AuditPage', () => {
  it('lists entries newest first and loads more after the cursor', async () => {
    const u = userEvent.setup();
    const asked: URLSearchParams[] = [];
    server.use(
      http.get('*/api/v1/audit', ({ request }) => {
        const params = new URL(request.url).searchParams;
        asked.push(params);
        return params.get('cursor') === 'page-2'
          ? HttpResponse.json({ items: [entry(1, { action: 'auth.login_failed', actor: { name: 'mallory@example.com' }, outcome: 'failure', reason: 'wrong email or password', target: null })], next_cursor: null })
          : HttpResponse.json({ items: [entry(3, { actor: { name: 'admin@example.com', api_key_name: 'deploy' } }), entry(2)], next_cursor: 'page-2' });
      }),
    );
    renderWithStore(<AuditPage />);
    const table = await screen.findByRole('table', { name: 'Audit log, newest first' });
    expect(within(table).getByText('agent agent-3')).toBeInTheDocument();
    expect(within(table).getByText('admin@example.com (key deploy)')).toBeInTheDocument();
    expect(within(table).getByText('req-2')).toBeInTheDocument();
    expect(screen.queryByText('mallory@example.com')).toBeNull();

    await u.click(screen.getByRole('button', { name: 'Load more' }));
    expect(await screen.findByText('mallory@example.com')).toBeInTheDocument();
    expect(screen.getByText('wrong email or password')).toBeInTheDocument();
    expect(screen.getAllByRole('row')).toHaveLength(1 + 3);
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
    expect(asked.map((p) => p.get('cursor'))).toEqual([null, 'page-2']);
  });

  it('sends the filters, and shows the server refusing one', async () => {
    const u = userEvent.setup();
    const asked: URLSearchParams[] = [];
    server.use(
      http.get('*/api/v1/audit', ({ request }) => {
        const params = new URL(request.url).searchParams;
        asked.push(params);
        if (params.get('action') === 'auth') {
          return HttpResponse.json(errorBody('invalid_parameter', 'action: "auth" is neither an audit action nor the prefix of one'), { status: 400 });
        }
        return HttpResponse.json({ items: params.get('actor') ? [entry(4)] : [], next_cursor: null });
      }),
    );
    renderWithStore(<AuditPage />);
    expect(await screen.findByText('No entries match these filters.')).toBeInTheDocument();
    await u.type(screen.getByLabelText('Actor'), 'admin@example.com');
    await u.type(screen.getByLabelText('Action'), 'agent.');
    await u.type(screen.getByLabelText('Target'), 'agent:agent-4');
    await u.click(screen.getByRole('button', { name: 'Apply filters' }));
    expect(await screen.findByText('agent agent-4')).toBeInTheDocument();
    const last = asked.at(-1)!;
    expect([last.get('actor'), last.get('action'), last.get('target'), last.get('since')]).toEqual(['admin@example.com', 'agent.', 'agent:agent-4', null]);

    await u.clear(screen.getByLabelText('Action'));
    await u.type(screen.getByLabelText('Action'), 'auth');
    await u.click(screen.getByRole('button', { name: 'Apply filters' }));
    expect(await screen.findByText(/is neither an audit action/)).toBeInTheDocument();
  });

  it('is for admins only', () => {
    renderWithStore(<AuditPage />, { store: signedInStore('operator') });
    expect(screen.getByText('Only admins read the audit log.')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Apply filters' })).toBeNull();
  });
});
