import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeStore } from '@/app/store';
import { tokensFromPair } from '@/app/session';
import type { Transport, TransportOptions } from '@/app/live/transports';
import { authApi } from '@/features/auth/authApi';
import type { TaskEvent } from '@/shared/api/events';
import type { FileView } from '@/features/files/filesApi';
import type { Step } from '@/shared/api/types';
import { formatDateTime } from '@/shared/lib/format';
import { liveStore as liveTestStore, renderWithStore, signedInStore, USER_ID } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import { tasksApi } from '../tasksApi';
import { TaskDetailPage } from './TaskDetailPage';

useMockServer();

// Tasks without files: no artifacts (tests of files set their own).
beforeEach(() => server.use(http.get('*/api/v1/tasks/:id/artifacts', () => HttpResponse.json({ items: [] }))));

const ID = '01900000-0000-7000-8000-0000000000cc';

const task = {
  id: ID,
  agent: 'flaky',
  status: 'succeeded',
  priority: 3,
  input: { times: 1 },
  output: { attempts: 2 },
  error: null,
  cached: false,
  owner_id: USER_ID,
  run_at: '2026-01-01T00:00:00Z',
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:02Z',
  started_at: '2026-01-01T00:00:00.100Z',
  finished_at: '2026-01-01T00:00:02Z',
  attempts: [
    { number: 1, status: 'failed', started_at: '2026-01-01T00:00:00.100Z', finished_at: '2026-01-01T00:00:00.200Z', worker: 'builtin', error: { class: 'retryable', code: 'simulated_failure', message: 'simulated retryable failure 1 of 1' } },
    { number: 2, status: 'succeeded', started_at: '2026-01-01T00:00:01Z', finished_at: '2026-01-01T00:00:02Z', worker: 'builtin' },
  ],
  cancel_requested: false,
  seq: 6,
};

const STEPS: Step[] = [
  { name: 'search', status: 'succeeded', attempt: 1, output: { hits: 12 }, started_at: '2026-01-01T00:00:00.200Z', finished_at: '2026-01-01T00:00:01.012Z' },
  {
    name: 'review',
    status: 'failed',
    attempt: 2,
    error: { class: 'retryable', code: 'busy', message: 'upstream busy' },
    started_at: '2026-01-01T00:00:01.500Z',
    finished_at: '2026-01-01T00:00:01.540Z',
  },
];

const running = {
  ...task,
  status: 'running',
  output: null,
  finished_at: null,
  attempts: [{ number: 2, status: 'running', started_at: '2026-01-01T00:00:01Z', finished_at: null, worker: 'w1' }],
};

type EventInput = TaskEvent extends infer E ? (E extends TaskEvent ? Omit<E, 'type' | 'agent' | 'task_id'> : never) : never;

/** A signed-in store whose live connection is a fake: `emit` delivers a task event. */
function liveStore() {
  const opened: TransportOptions[] = [];
  const store = makeStore({
    live: {
      connection: {
        openWebSocket: (_url, opts): Transport => {
          opened.push(opts);
          return { kind: 'websocket', watchTask: () => {}, unwatchTask: () => {}, close: () => {} };
        },
      },
    },
    preloadedState: {
      session: { tokens: tokensFromPair({ access_token: 'a', refresh_token: 'r', expires_in: 900, token_type: 'Bearer' }), endedMessage: null },
    },
  });
  store.dispatch(
    authApi.util.upsertQueryEntries([
      {
        endpointName: 'me',
        arg: undefined,
        value: { user: { id: USER_ID, email: 'operator@example.com', role: 'operator', disabled: false, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' } },
      },
    ]),
  );
  const emit = (e: EventInput) => opened.at(-1)!.callbacks.onEvent({ type: 'event', task_id: ID, agent: 'flaky', ...e } as TaskEvent);
  return { store, emit };
}

describe('TaskDetailPage', () => {
  it('shows input, output, the attempts timeline, the log and the actions that apply', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(task)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [{ seq: 3, attempt: 1, at: '2026-01-01T00:00:00.150Z', level: 'warn', message: 'about to fail' }] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    const { store } = renderWithStore(<TaskDetailPage />, { store: signedInStore('operator'), path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-status')).toHaveTextContent('Succeeded');
    expect(screen.getByRole('region', { name: 'Input' })).toHaveTextContent('"times": 1');
    expect(screen.getByRole('region', { name: 'Output' })).toHaveTextContent('"attempts": 2');
    const attempts = screen.getByRole('list', { name: 'Attempts' });
    expect(attempts).toHaveTextContent('Attempt 1');
    expect(attempts).toHaveTextContent('simulated retryable failure 1 of 1');
    expect(attempts).toHaveTextContent('Attempt 2');
    expect(await screen.findByRole('log', { name: 'Task log' })).toHaveTextContent('about to fail');
    expect(screen.getByText('you')).toBeInTheDocument();
    // Succeeded: nothing to cancel, nothing to retry.
    expect(screen.queryByRole('button', { name: /cancel task|retry task/i })).toBeNull();
    // A task without durable steps has no Steps section.
    await waitFor(() => expect(tasksApi.endpoints.getTaskSteps.select(ID)(store.getState()).isSuccess).toBe(true));
    expect(screen.queryByRole('heading', { name: /^Steps/ })).toBeNull();
    expect(screen.queryByRole('list', { name: 'Steps' })).toBeNull();
  });

  it('shows the durable steps: succeeded ones with their output folded, failed ones with their error', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(task)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: STEPS })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    renderWithStore(<TaskDetailPage />, { store: signedInStore('operator'), path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByRole('heading', { name: 'Steps (2)' })).toBeInTheDocument();
    const list = screen.getByRole('list', { name: 'Steps' });
    const [search, review] = within(list).getAllByRole('listitem');
    // In recorded order, each under its own heading.
    expect(within(list).getAllByRole('heading').map((h) => h.textContent)).toEqual(['search', 'review']);

    expect(search).toHaveTextContent('Succeeded');
    expect(search).toHaveTextContent('Attempt 1');
    expect(search).toHaveTextContent('812 ms');
    // The output is folded; its summary is focusable (browsers unfold it with Enter or Space, too).
    const json = search!.querySelector('pre')!;
    expect(json).not.toBeVisible();
    const summary = within(search!).getByText('Output');
    summary.focus();
    expect(summary).toHaveFocus();
    await userEvent.click(summary);
    expect(json).toBeVisible();
    expect(json).toHaveTextContent('"hits": 12');

    expect(review).toHaveTextContent('Failed');
    expect(review).toHaveTextContent('Attempt 2');
    expect(review).toHaveTextContent('retryable');
    expect(review).toHaveTextContent('busy');
    expect(review).toHaveTextContent('upstream busy');
    expect(within(review!).queryByText('Output')).toBeNull();
  });

  it('adds and updates steps live as step_finished events arrive', async () => {
    let listed: Step[] = [STEPS[0]!];
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(running)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: listed })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
      http.get('*/api/v1/queues', () => HttpResponse.json({ items: [] })),
    );
    const { store, emit } = liveStore();
    renderWithStore(<TaskDetailPage />, { store, path: '/tasks/:id', route: `/tasks/${ID}` });
    const list = await screen.findByRole('list', { name: 'Steps' });
    expect(within(list).getAllByRole('listitem')).toHaveLength(1);

    // A new step appears at once; the list, fetched shortly after, tells when it started.
    const review = STEPS[1]!;
    listed = [STEPS[0]!, review];
    act(() => emit({ seq: 7, kind: 'step_finished', name: 'review', status: 'failed', attempt: 2, error: review.error, at: review.finished_at }));
    expect(await screen.findByRole('heading', { name: 'Steps (2)' })).toBeInTheDocument();
    let item = within(list).getAllByRole('listitem')[1]!;
    expect(item).toHaveTextContent('review');
    expect(item).toHaveTextContent('Failed');
    expect(item).toHaveTextContent('upstream busy');
    expect(item).toHaveTextContent('finished');
    await waitFor(() => expect(within(list).getAllByRole('listitem')[1]).toHaveTextContent('40 ms'), { timeout: 3000 });

    // Its next run succeeds: the same entry (same place) now shows the output.
    const done: Step = { name: 'review', status: 'succeeded', attempt: 3, output: { ok: true }, started_at: '2026-01-01T00:00:05.000Z', finished_at: '2026-01-01T00:00:05.250Z' };
    listed = [STEPS[0]!, done];
    act(() => emit({ seq: 8, kind: 'step_finished', name: 'review', status: 'succeeded', attempt: 3, output: { ok: true }, at: done.finished_at }));
    // (RTK batches store notifications: the page re-renders a moment later.)
    await waitFor(() => expect(within(list).getAllByRole('listitem')[1]).toHaveTextContent('Succeeded'));
    item = within(list).getAllByRole('listitem')[1]!;
    expect(within(list).getAllByRole('listitem')).toHaveLength(2);
    expect(item).toHaveTextContent('Attempt 3');
    expect(item).not.toHaveTextContent('upstream busy');
    expect(within(item).getByText('Output')).toBeInTheDocument();

    // A late failure report never replaces a step that succeeded; and none of this is a log line or a status change.
    act(() => emit({ seq: 9, kind: 'step_finished', name: 'review', status: 'failed', attempt: 3, error: review.error, at: '2026-01-01T00:00:06.000Z' }));
    expect(tasksApi.endpoints.getTaskSteps.select(ID)(store.getState()).data!.items[1]).toMatchObject({ name: 'review', status: 'succeeded', output: { ok: true } });
    await act(() => new Promise((r) => setTimeout(r, 50)));
    expect(within(list).getAllByRole('listitem')[1]).toHaveTextContent('Succeeded');
    expect(screen.getByTestId('task-status')).toHaveTextContent('Running');
    expect(screen.getByRole('log', { name: 'Task log' })).toHaveTextContent('No log lines yet');
    await waitFor(() => expect(within(list).getAllByRole('listitem')[1]).toHaveTextContent('250 ms'), { timeout: 3000 });
  });

  it('says what a waiting task waits for, sends it its signal, and follows waiting, signal_received and resumed live', async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const approvalWait = { kind: 'signal', name: 'signal:approval', signal: 'approval', until } as const;
    // What the server says when the page (re)fetches the task.
    let current: Record<string, unknown> = { ...running, status: 'waiting', wait: approvalWait, attempts: [{ ...running.attempts[0], status: 'succeeded', finished_at: '2026-01-01T00:00:01.500Z' }] };
    const sent: unknown[] = [];
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(current)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
      http.get('*/api/v1/queues', () => HttpResponse.json({ items: [] })),
      http.post(`*/api/v1/tasks/${ID}/signals/approval`, async ({ request }) => {
        sent.push(await request.json());
        return HttpResponse.json({ task_id: ID, name: 'approval', resumed: true }, { status: 202 });
      }),
    );
    const { store, emit } = liveTestStore('operator');
    renderWithStore(<TaskDetailPage />, { store, path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-status')).toHaveTextContent('Waiting');
    expect(screen.getByTestId('task-wait')).toHaveTextContent(`Waiting for signal approval (until ${formatDateTime(until)}, in 1 h)`);

    const form = screen.getByRole('form', { name: 'Send signal approval' });
    await userEvent.click(within(form).getByRole('button', { name: 'Approve' }));
    expect(await within(form).findByRole('status')).toHaveTextContent('the task resumes');
    expect(sent).toEqual([{ approved: true }]);

    // The server's events: the signal arrived, the task is queued again.
    act(() => emit({ task_id: ID, seq: 7, kind: 'signal_received', name: 'approval', payload: { approved: true } }));
    const received = await screen.findByRole('list', { name: 'Signals received' });
    expect(received).toHaveTextContent('approval');
    expect(received).toHaveTextContent('{"approved":true}');
    current = { ...current, status: 'queued', wait: null, seq: 8 };
    act(() => emit({ task_id: ID, seq: 8, kind: 'resumed', reason: 'signal' }));
    await waitFor(() => expect(screen.getByTestId('task-status')).toHaveTextContent('Queued'));
    expect(screen.queryByTestId('task-wait')).toBeNull();
    expect(screen.queryByRole('form', { name: 'Send signal approval' })).toBeNull();
    expect(screen.getByRole('list', { name: 'Signals received' })).toBeInTheDocument();

    // Its next run sleeps: the page says until when.
    const wakes = new Date(Date.now() + 600_000).toISOString();
    current = { ...current, status: 'waiting', wait: { kind: 'sleep', name: 'nap', until: wakes }, seq: 10 };
    act(() => emit({ task_id: ID, seq: 9, kind: 'status', status: 'running', attempt: 3 }));
    act(() => emit({ task_id: ID, seq: 10, kind: 'waiting', attempt: 3, wait: { kind: 'sleep', name: 'nap', until: wakes } }));
    expect(await screen.findByTestId('task-wait')).toHaveTextContent(`Sleeping until ${formatDateTime(wakes)} (in 10 min)`);
    expect(screen.getByTestId('task-status')).toHaveTextContent('Waiting');
    expect(screen.queryByRole('form', { name: /Send signal/ })).toBeNull();
  });

  it('shows a viewer what the task waits for, without the form to send it', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json({ ...running, status: 'waiting', wait: { kind: 'signal', name: 'signal:approval', signal: 'approval' } })),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-wait')).toHaveTextContent(/^Waiting for signal approval$/);
    expect(screen.getByText('The task waits for this signal. Its owner or an admin can send it.')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Approve' })).toBeNull();
  });

  it('shows the schedule that fired the task, when it was due, and its concurrency key', async () => {
    const fired = { ...task, schedule: 'nightly', scheduled_for: '2026-01-01T02:00:00Z', concurrency_key: 'customer-42' };
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(fired)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
    const schedule = await screen.findByText('Schedule');
    expect(within(schedule.parentElement!).getByRole('link', { name: 'nightly' })).toHaveAttribute('href', '/schedules/nightly');
    expect(screen.getByText('Scheduled for').nextElementSibling).toHaveTextContent(formatDateTime('2026-01-01T02:00:00Z'));
    expect(screen.getByText('Concurrency key').nextElementSibling).toHaveTextContent('customer-42');
  });

  it('has no schedule facts for a task submitted by hand', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(task)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
    await screen.findByTestId('task-status');
    expect(screen.queryByText('Schedule')).toBeNull();
    expect(screen.queryByText('Scheduled for')).toBeNull();
    expect(screen.queryByText('Concurrency key')).toBeNull();
  });

  describe('files', () => {
    const file = (id: string, name: string, size: number, content_type: string, task_id?: string): FileView => ({
      id,
      name,
      size,
      content_type,
      sha256: '0'.repeat(64),
      created_at: '2026-01-01T00:00:00Z',
      owner: USER_ID,
      ...(task_id ? { task_id } : {}),
    });
    const TEXT = file('f-text', 'hello.txt', 12, 'text/plain');
    const JSONF = file('f-json', 'data.json', 15, 'application/json');
    const BIG = file('f-big', 'big.log', 100 * 1024, 'text/plain');
    const IMAGE = file('f-image', 'chart.png', 4, 'image/png', ID);
    const PDF = file('f-pdf', 'report.pdf', 3 * 1024 * 1024, 'application/pdf', ID);
    const CONTENT: Record<string, string> = { 'f-text': 'hello world!', 'f-json': '{"a":1,"b":[2]}', 'f-big': 'x'.repeat(100 * 1024), 'f-image': 'PNG!', 'f-pdf': '%PDF' };
    let ranges: Record<string, string | null>;
    let created: Blob[];

    const { createObjectURL, revokeObjectURL } = URL;
    beforeEach(() => {
      ranges = {};
      created = [];
      URL.createObjectURL = vi.fn((b: Blob) => {
        created.push(b);
        return `blob:test/${created.length}`;
      });
      URL.revokeObjectURL = vi.fn();
    });
    afterEach(() => {
      URL.createObjectURL = createObjectURL;
      URL.revokeObjectURL = revokeObjectURL;
    });

    const withFiles = {
      ...task,
      input: { doc: { $file: TEXT.id }, options: { data: { $file: JSONF.id }, log: { $file: BIG.id } }, gone: { $file: 'f-gone' } },
      output: { chart: { $file: IMAGE.id }, extra: { $file: 'f-other' }, copy: { $file: TEXT.id }, note: { $file: 'f-pdf', why: 'not a reference' } },
    };

    function handlers() {
      const byId = Object.fromEntries([TEXT, JSONF, BIG, IMAGE, PDF, file('f-other', 'other.bin', 2048, 'application/octet-stream')].map((f) => [f.id, f]));
      server.use(
        http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(withFiles)),
        http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
        http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
        http.get(`*/api/v1/tasks/${ID}/artifacts`, () => HttpResponse.json({ items: [IMAGE, PDF] })),
        http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
        http.get('*/api/v1/files/:id', ({ params }) => {
          const f = byId[params.id as string];
          return f ? HttpResponse.json(f) : HttpResponse.json(errorBody('file_not_found', 'no such file'), { status: 404 });
        }),
        http.get('*/api/v1/files/:id/content', ({ params, request }) => {
          const id = params.id as string;
          ranges[id] = request.headers.get('range');
          if (request.headers.get('authorization') !== 'Bearer access-1') return HttpResponse.json(errorBody('unauthorized', 'who are you'), { status: 401 });
          return new HttpResponse(CONTENT[id], { headers: { 'content-type': byId[id]!.content_type } });
        }),
      );
    }

    it('lists the input files, the artifacts and other output files, with previews', async () => {
      handlers();
      renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
      const inputs = await screen.findByRole('list', { name: 'Input files' });
      const text = await within(inputs).findByRole('listitem', { name: 'hello.txt' });
      expect(text).toHaveAttribute('id', 'file-f-text');
      expect(text).toHaveTextContent('12 B');
      expect(text).toHaveTextContent('text/plain');
      expect(await within(text).findByRole('figure', { name: 'Preview of hello.txt' })).toHaveTextContent('hello world!');
      expect(ranges['f-text']).toBeNull();

      // JSON pretty-printed; a big text file: its first 64 KiB, asked for with a Range.
      const json = await within(inputs).findByRole('listitem', { name: 'data.json' });
      expect((await within(json).findByRole('figure', { name: 'Preview of data.json' })).querySelector('pre')!.textContent).toBe('{\n  "a": 1,\n  "b": [\n    2\n  ]\n}');
      const big = await within(inputs).findByRole('listitem', { name: 'big.log' });
      expect(big).toHaveTextContent('100 KiB');
      expect(await within(big).findByRole('figure', { name: 'Preview of big.log' })).toHaveTextContent('The first 64 KiB of 100 KiB: download the file for the rest.');
      expect(ranges['f-big']).toBe('bytes=0-65535');
      expect(within(big).getByRole('figure').querySelector('pre')!.textContent).toHaveLength(65536);
      // A reference the viewer cannot read.
      expect(within(inputs).getAllByRole('listitem')).toHaveLength(4);
      expect(await within(inputs).findByText(/not found \(deleted, or not yours to read\)/)).toBeInTheDocument();

      // Artifacts: an image shown from a blob URL, a PDF without a preview.
      const artifacts = screen.getByRole('list', { name: 'Artifacts' });
      const image = within(artifacts).getByRole('listitem', { name: 'chart.png' });
      expect(await within(image).findByRole('img', { name: 'chart.png' })).toHaveAttribute('src', expect.stringMatching(/^blob:test\//));
      const pdf = within(artifacts).getByRole('listitem', { name: 'report.pdf' });
      expect(pdf).toHaveTextContent('3 MiB');
      expect(within(pdf).queryByRole('figure')).toBeNull();
      expect(ranges['f-pdf']).toBeUndefined();

      // The output's other file; its references link to the entries.
      const others = screen.getByRole('list', { name: 'Output files' });
      expect(await within(others).findByRole('listitem', { name: 'other.bin' })).toBeInTheDocument();
      const output = screen.getByRole('region', { name: 'Output' });
      expect(within(output).getByRole('link', { name: '"f-image"' })).toHaveAttribute('href', '#file-f-image');
      expect(within(output).getByRole('link', { name: '"f-other"' })).toHaveAttribute('href', '#file-f-other');
      expect(within(output).getByRole('link', { name: '"f-text"' })).toHaveAttribute('href', '#file-f-text');
      // Not a reference (another key beside $file): no link.
      expect(within(output).queryByRole('link', { name: '"f-pdf"' })).toBeNull();
      expect(within(screen.getByRole('region', { name: 'Input' })).getByRole('link', { name: '"f-json"' })).toHaveAttribute('href', '#file-f-json');
    });

    it('downloads a file through a blob URL, with the session’s token', async () => {
      handlers();
      const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(() => {});
      renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
      const pdf = await screen.findByRole('listitem', { name: 'report.pdf' });
      await userEvent.click(within(pdf).getByRole('button', { name: 'Download report.pdf' }));
      await waitFor(() => expect(click).toHaveBeenCalledTimes(1));
      const anchor = click.mock.instances[0] as unknown as HTMLAnchorElement;
      expect(anchor.download).toBe('report.pdf');
      expect(anchor.href).toMatch(/^blob:test\//);
      expect(await created.at(-1)!.text()).toBe('%PDF');
      expect(ranges['f-pdf']).toBeNull();
      click.mockRestore();
    });
  });

  it('has no Files section for a task without files', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(task)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    const { store } = renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
    await screen.findByTestId('task-status');
    await waitFor(() => expect(store.getState().api.queries[`getTaskArtifacts("${ID}")`]?.status).toBe('fulfilled'));
    expect(screen.queryByRole('heading', { name: 'Files' })).toBeNull();
  });

  it('says so when the task does not exist', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(errorBody('task_not_found', 'no task with that id'), { status: 404 })),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json(errorBody('task_not_found', 'no task with that id'), { status: 404 })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json(errorBody('task_not_found', 'no task with that id'), { status: 404 })),
    );
    renderWithStore(<TaskDetailPage />, { path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByRole('alert')).toHaveTextContent('No such task: no task with that id');
  });
});

describe('TaskDetailPage, streamed output and usage', () => {
  const CUT = 'the first 40 progress and partial-output events of this task are no longer kept: a task keeps its last 10000 (queue.max_stream_events)';
  const answered = {
    ...task,
    agent: 'writer',
    input: { topic: 'rivers' },
    output: { content: 'Rivers run to the sea.', finish_reason: 'stop', usage: { prompt_tokens: 1200, completion_tokens: 345, cost: 0.0123 } },
    seq: 9,
  };

  function serve(body: object) {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(body)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [] })),
      http.get(`*/api/v1/tasks/${ID}/steps`, () => HttpResponse.json({ items: [] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
      http.get('*/api/v1/queues', () => HttpResponse.json({ items: [] })),
    );
  }

  it('follows a finished task from its first event and shows the whole streamed answer, its tokens and cost', async () => {
    serve(answered);
    const { store, emit, watched } = liveTestStore('viewer');
    renderWithStore(<TaskDetailPage />, { store, path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-status')).toHaveTextContent('Succeeded');
    await waitFor(() => expect(watched).toContainEqual([ID, 0]));

    // The server's replay: what the task kept, then its current state.
    act(() => {
      ['Rivers ', 'run ', 'to ', 'the ', 'sea.'].forEach((delta, i) => emit({ task_id: ID, seq: 3 + i, kind: 'partial', data: { delta } }));
      emit({ task_id: ID, seq: 9, kind: 'result', status: 'succeeded', attempt: 2, output: answered.output, cached: false });
    });
    const region = await screen.findByRole('region', { name: 'Streamed output' });
    expect(within(region).getByTestId('stream-text')).toHaveTextContent('Rivers run to the sea.');
    expect(screen.getByTestId('task-tokens')).toHaveTextContent('1,545 (1,200 prompt, 345 completion)');
    expect(screen.getByTestId('task-cost')).toHaveTextContent('0.0123');
  });

  it('shows a running task’s text so far and grows it live, with the notice of what the server no longer keeps', async () => {
    serve({ ...running, agent: 'writer', seq: 50 });
    const { store, emit } = liveTestStore('viewer');
    renderWithStore(<TaskDetailPage />, { store, path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-status')).toHaveTextContent('Running');
    act(() => {
      emit({ task_id: ID, seq: 42, kind: 'log', level: 'warn', message: CUT });
      emit({ task_id: ID, seq: 43, kind: 'partial', data: { delta: 'Once ' } });
      emit({ task_id: ID, seq: 44, kind: 'partial', data: { delta: 'upon ' } });
    });
    const region = await screen.findByRole('region', { name: 'Live output' });
    expect(await within(region).findByTestId('stream-text')).toHaveTextContent('Once upon');
    expect(within(region).getByTestId('stream-cut')).toHaveTextContent('no longer kept');
    // No usage before there is an output.
    expect(screen.queryByTestId('task-tokens')).toBeNull();

    act(() => emit({ task_id: ID, seq: 51, kind: 'partial', data: { delta: 'a time' } }));
    await waitFor(() => expect(within(region).getByTestId('stream-text')).toHaveTextContent('Once upon a time'));
    // Delivered again (a second subscription): shown once.
    act(() => emit({ task_id: ID, seq: 44, kind: 'partial', data: { delta: 'upon ' } }));
    act(() => emit({ task_id: ID, seq: 51, kind: 'partial', data: { delta: 'a time' } }));
    await act(() => new Promise((r) => setTimeout(r, 20)));
    expect(within(region).getByTestId('stream-text').textContent).toBe('Once upon a time');
  });

  it('shows tokens without a cost when the agent has no prices, and nothing for an output without usage', async () => {
    serve({ ...answered, output: { content: 'ok', usage: { prompt_tokens: 10, completion_tokens: 2 } } });
    renderWithStore(<TaskDetailPage />, { store: signedInStore('viewer'), path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-tokens')).toHaveTextContent('12 (10 prompt, 2 completion)');
    expect(screen.queryByTestId('task-cost')).toBeNull();
  });
});
