import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import type { Agent, Task } from '@/shared/api/types';
import { SubmitTaskPage } from './SubmitTaskPage';

useMockServer();

const slow: Agent = {
  name: 'slow',
  kind: 'sleep',
  description: 'Sleeps ms.',
  version: '1',
  input_schema: { type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 600000, default: 5000 } } },
  config: {},
  retry: { max_attempts: 5, base_ms: 200, cap_ms: 30000 },
  timeout_ms: 700000,
  priority: 0,
  builtin: false,
  secrets: [],
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
};

const created: Task = {
  id: '01900000-0000-7000-8000-0000000000bb',
  agent: 'slow',
  status: 'queued',
  priority: 0,
  input: { ms: 250 },
  cached: false,
  run_at: '2026-01-01T00:00:00Z',
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
  attempts: [],
  cancel_requested: false,
  seq: 1,
};

describe('SubmitTaskPage', () => {
  it('submits the generated form and shows the task it created', async () => {
    const user = userEvent.setup();
    let body: unknown;
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [slow] })),
      http.post('*/api/v1/tasks', async ({ request }) => {
        body = await request.json();
        return HttpResponse.json(created, { status: 201 });
      }),
      http.get('*/api/v1/tasks/:id', () => HttpResponse.json(created)),
    );
    renderWithStore(<SubmitTaskPage />, { path: '/tasks/new', route: '/tasks/new?agent=slow' });
    const ms = await screen.findByLabelText(/^ms/);
    expect(ms).toHaveValue(5000);
    await user.clear(ms);
    await user.type(ms, '250');
    await user.click(screen.getByRole('button', { name: 'Submit task' }));
    expect(body).toEqual({ agent: 'slow', input: { ms: 250 } });
    const recent = await screen.findByTestId('recent-submissions');
    expect(await within(recent).findByText('Queued')).toBeInTheDocument();
  });

  it('checks the schema before sending', async () => {
    const user = userEvent.setup();
    let posted = false;
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [slow] })),
      http.post('*/api/v1/tasks', () => {
        posted = true;
        return HttpResponse.json(created, { status: 201 });
      }),
    );
    renderWithStore(<SubmitTaskPage />, { path: '/tasks/new', route: '/tasks/new?agent=slow' });
    const ms = await screen.findByLabelText(/^ms/);
    await user.clear(ms);
    await user.type(ms, '-5');
    await user.click(screen.getByRole('button', { name: 'Submit task' }));
    expect(ms).toHaveAccessibleDescription(/must be at least 0/);
    expect(posted).toBe(false);
  });

  it('shows the server’s validation messages on the fields', async () => {
    const user = userEvent.setup();
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [{ ...slow, input_schema: { type: 'object', properties: { ms: { type: 'integer' } } } }] })),
      http.post('*/api/v1/tasks', () =>
        HttpResponse.json(
          errorBody('validation_failed', 'the input failed validation: /ms: 900000 is greater than the maximum of 600000', {
            violations: [{ path: '/ms', keyword: 'maximum', message: '900000 is greater than the maximum of 600000' }],
          }),
          { status: 422 },
        ),
      ),
    );
    renderWithStore(<SubmitTaskPage />, { path: '/tasks/new', route: '/tasks/new?agent=slow' });
    const ms = await screen.findByLabelText(/^ms/);
    await user.type(ms, '900000');
    await user.click(screen.getByRole('button', { name: 'Submit task' }));
    expect(await screen.findByText('900000 is greater than the maximum of 600000')).toBeInTheDocument();
    expect(ms).toHaveAttribute('aria-invalid', 'true');
  });

  it('tells a viewer they cannot submit', async () => {
    server.use(http.get('*/api/v1/agents', () => HttpResponse.json({ items: [slow] })));
    renderWithStore(<SubmitTaskPage />, { store: signedInStore('viewer'), path: '/tasks/new', route: '/tasks/new' });
    expect(await screen.findByText(/can look at tasks but not submit them/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Submit task' })).toBeNull();
  });
});
