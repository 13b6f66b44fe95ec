import { screen, waitFor, within } from '@testing-library/react';
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

  it('uploads the file picked for a file property and submits its reference', async () => {
    const user = userEvent.setup();
    const reader: Agent = {
      ...slow,
      name: 'reader',
      input_schema: { type: 'object', required: ['doc'], properties: { doc: { type: 'object', format: 'file' }, lines: { type: 'integer', default: 3 } } },
    };
    const uploads: { name: string | null; type: string | null; body: string }[] = [];
    let body: unknown;
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [reader] })),
      http.post('*/api/v1/files', async ({ request }) => {
        const name = new URL(request.url).searchParams.get('name');
        uploads.push({ name, type: request.headers.get('content-type'), body: await request.text() });
        if (name === 'huge.txt') return HttpResponse.json(errorBody('file_too_large', 'the file is larger than 1 MiB'), { status: 413 });
        return HttpResponse.json(
          { id: 'f-1', name, size: 12, content_type: 'text/plain', sha256: '0'.repeat(64), created_at: '2026-01-01T00:00:00Z', owner: null },
          { status: 201 },
        );
      }),
      http.post('*/api/v1/tasks', async ({ request }) => {
        body = await request.json();
        return HttpResponse.json({ ...created, agent: 'reader', input: { doc: { $file: 'f-1' }, lines: 3 } }, { status: 201 });
      }),
      http.get('*/api/v1/tasks/:id', () => HttpResponse.json(created)),
    );
    renderWithStore(<SubmitTaskPage />, { path: '/tasks/new', route: '/tasks/new?agent=reader' });
    const doc = await screen.findByLabelText(/^doc/);

    // Not sent without the file.
    await user.click(screen.getByRole('button', { name: 'Submit task' }));
    expect(doc).toHaveAccessibleDescription(/is required/);
    expect(body).toBeUndefined();

    await user.upload(doc, new File(['x'.repeat(2_000_000)], 'huge.txt', { type: 'text/plain' }));
    expect(await screen.findByText(/huge.txt was not uploaded: the file is too large for this server \(the file is larger than 1 MiB\)/)).toBeInTheDocument();

    await user.upload(doc, new File(['hello world!'], 'hello.txt', { type: 'text/plain' }));
    expect(await screen.findByTestId('file-chosen')).toHaveTextContent('Uploaded hello.txt (12 B, text/plain)');
    expect(uploads.at(-1)).toEqual({ name: 'hello.txt', type: 'text/plain', body: 'hello world!' });
    await user.click(screen.getByRole('button', { name: 'Submit task' }));
    await waitFor(() => expect(body).toEqual({ agent: 'reader', input: { doc: { $file: 'f-1' }, lines: 3 } }));
  });

  it('tells a viewer they cannot submit', async () => {
    server.use(http.get('*/api/v1/agents', () => HttpResponse.json({ items: [slow] })));
    renderWithStore(<SubmitTaskPage />, { store: signedInStore('viewer'), path: '/tasks/new', route: '/tasks/new' });
    expect(await screen.findByText(/can look at tasks but not submit them/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Submit task' })).toBeNull();
  });
});
