// The live middleware patches cached RTK Query data: task details, lists, logs and live output.
import { describe, expect, it } from 'vitest';
import { makeStore } from '@/app/store';
import { tokensFromPair } from '@/app/session';
import { watchTask } from '@/app/live/liveSlice';
import type { Transport, TransportOptions } from '@/app/live/transports';
import { asTaskEvent, type TaskEvent } from '@/shared/api/events';
import type { Task, TaskWait } from '@/shared/api/types';
import { STREAM_FLUSH_MS } from './liveCache';
import { tasksApi } from './tasksApi';

function task(id: string, over: Partial<Task> = {}): Task {
  return {
    id,
    agent: 'slow',
    status: 'queued',
    priority: 0,
    input: { ms: 10 },
    output: null,
    error: null,
    cached: false,
    owner_id: 'u1',
    idempotency_key: null,
    run_at: '2026-01-01T00:00:00.000Z',
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    started_at: null,
    finished_at: null,
    attempts: [],
    parent_id: null,
    fallback_of: null,
    fallback_task_id: null,
    trace_id: null,
    cancel_requested: false,
    seq: 1,
    ...over,
  };
}

type EventInput = TaskEvent extends infer E ? (E extends TaskEvent ? Omit<E, 'type' | 'agent' | 'at'> & { at?: string; agent?: string } : never) : never;

function setup() {
  const opened: TransportOptions[] = [];
  const transport = (_url: string, opts: TransportOptions): Transport => {
    opened.push(opts);
    return { kind: 'websocket', watchTask: () => {}, unwatchTask: () => {}, close: () => {} };
  };
  const store = makeStore({
    live: { connection: { openWebSocket: transport } },
    preloadedState: {
      session: { tokens: tokensFromPair({ access_token: 'a', refresh_token: 'r', expires_in: 900, token_type: 'Bearer' }), endedMessage: null },
    },
  });
  const emit = (e: EventInput) =>
    opened.at(-1)!.callbacks.onEvent({ type: 'event', agent: 'slow', at: '2026-01-01T00:00:01.000Z', ...e } as TaskEvent);
  return { store, emit, opened };
}

const flush = () => new Promise((r) => setTimeout(r, 0));
/** Progress and partial output are applied together, shortly after they arrive. */
const streamApplied = () => new Promise((r) => setTimeout(r, STREAM_FLUSH_MS * 2));

describe('live events patch the cache', () => {
  it('updates a task detail through running to succeeded, with its attempts', async () => {
    const { store, emit, opened } = setup();
    await flush();
    expect(opened).toHaveLength(1);
    opened[0]!.callbacks.onOpen();
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', task('t1')));
    emit({ task_id: 't1', seq: 2, kind: 'status', status: 'running', attempt: 1 });
    let t = tasksApi.endpoints.getTask.select('t1')(store.getState()).data!;
    expect(t.status).toBe('running');
    expect(t.attempts).toMatchObject([{ number: 1, status: 'running' }]);
    emit({ task_id: 't1', seq: 3, kind: 'result', status: 'succeeded', attempt: 1, output: { slept_ms: 10 }, cached: false, at: '2026-01-01T00:00:02.000Z' });
    t = tasksApi.endpoints.getTask.select('t1')(store.getState()).data!;
    expect(t).toMatchObject({ status: 'succeeded', output: { slept_ms: 10 }, finished_at: '2026-01-01T00:00:02.000Z', seq: 3 });
    expect(t.attempts[0]).toMatchObject({ status: 'succeeded', finished_at: '2026-01-01T00:00:02.000Z' });
    expect(store.getState().live.status).toBe('live');
  });

  it('patches list rows, inserts new tasks on first pages that match, drops rows leaving a status filter', async () => {
    const { store, emit } = setup();
    await flush();
    await store.dispatch(tasksApi.util.upsertQueryData('listTasks', { limit: 500 }, { items: [task('old')], next_cursor: null }));
    await store.dispatch(tasksApi.util.upsertQueryData('listTasks', { status: ['dead'], limit: 500 }, { items: [task('d1', { status: 'dead', seq: 5 })], next_cursor: null }));
    await store.dispatch(tasksApi.util.upsertQueryData('listTasks', { agent: 'echo', limit: 500 }, { items: [], next_cursor: null }));

    emit({ task_id: 'new', seq: 1, kind: 'status', status: 'queued', attempt: 0 });
    emit({ task_id: 'old', seq: 2, kind: 'status', status: 'running', attempt: 1 });
    emit({ task_id: 'd1', seq: 6, kind: 'status', status: 'queued', attempt: 3 });

    const all = tasksApi.endpoints.listTasks.select({ limit: 500 })(store.getState()).data!;
    expect(all.items.map((t) => [t.id, t.status])).toEqual([
      ['new', 'queued'],
      ['old', 'running'],
    ]);
    expect(tasksApi.endpoints.listTasks.select({ status: ['dead'], limit: 500 })(store.getState()).data!.items).toEqual([]);
    expect(tasksApi.endpoints.listTasks.select({ agent: 'echo', limit: 500 })(store.getState()).data!.items).toEqual([]);
  });

  it('appends log lines and live output, once each', async () => {
    const { store, emit } = setup();
    await flush();
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', task('t1', { status: 'running', seq: 2, attempts: [{ number: 1, status: 'running', started_at: '2026-01-01T00:00:00.500Z' }] })));
    await store.dispatch(tasksApi.util.upsertQueryData('getTaskLogs', 't1', { items: [] }));
    await store.dispatch(tasksApi.endpoints.getTaskStream.initiate('t1'));
    emit({ task_id: 't1', seq: 3, kind: 'log', level: 'info', message: 'sleeping 10 ms' });
    emit({ task_id: 't1', seq: 3, kind: 'log', level: 'info', message: 'sleeping 10 ms' });
    emit({ task_id: 't1', seq: 4, kind: 'partial', data: 'Hel' });
    emit({ task_id: 't1', seq: 5, kind: 'partial', data: 'lo' });
    emit({ task_id: 't1', seq: 6, kind: 'progress', progress: 0.5, message: 'half way' });
    await streamApplied();
    const logs = tasksApi.endpoints.getTaskLogs.select('t1')(store.getState()).data!;
    expect(logs.items).toEqual([{ seq: 3, attempt: 1, at: '2026-01-01T00:00:01.000Z', level: 'info', message: 'sleeping 10 ms' }]);
    const stream = tasksApi.endpoints.getTaskStream.select('t1')(store.getState()).data!;
    expect(stream.partials.map((p) => p.data)).toEqual(['Hel', 'lo']);
    expect(stream).toMatchObject({ progress: 0.5, progressMessage: 'half way' });
  });

  it('records steps in first-recorded order: new names appended, failed ones replaced by later reports, succeeded ones final', async () => {
    const { store, emit } = setup();
    await flush();
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', task('t1', { status: 'running', seq: 2, attempts: [{ number: 1, status: 'running', started_at: '2026-01-01T00:00:00.500Z' }] })));
    await store.dispatch(tasksApi.util.upsertQueryData('getTaskLogs', 't1', { items: [] }));
    await store.dispatch(
      tasksApi.util.upsertQueryData('getTaskSteps', 't1', {
        items: [{ name: 'search', status: 'succeeded', attempt: 1, output: { hits: 12 }, started_at: '2026-01-01T00:00:00.600Z', finished_at: '2026-01-01T00:00:00.900Z' }],
      }),
    );
    const busy = { class: 'retryable', code: 'busy', message: 'upstream busy' } as const;
    emit({ task_id: 't1', seq: 3, kind: 'step_finished', name: 'draft', status: 'failed', attempt: 1, error: busy, at: '2026-01-01T00:00:01.000Z' });
    // The same report again (a replay) and an older one change nothing.
    emit({ task_id: 't1', seq: 3, kind: 'step_finished', name: 'draft', status: 'failed', attempt: 1, error: busy, at: '2026-01-01T00:00:01.000Z' });
    emit({ task_id: 't1', seq: 4, kind: 'step_finished', name: 'draft', status: 'failed', attempt: 1, error: { ...busy, message: 'older' }, at: '2026-01-01T00:00:00.950Z' });
    const steps = () => tasksApi.endpoints.getTaskSteps.select('t1')(store.getState()).data!.items;
    expect(steps().map((s) => [s.name, s.status])).toEqual([
      ['search', 'succeeded'],
      ['draft', 'failed'],
    ]);
    expect(steps()[1]).toEqual({ name: 'draft', status: 'failed', attempt: 1, error: busy, started_at: null, finished_at: '2026-01-01T00:00:01.000Z' });
    // A later failure, then a success, replace it in place.
    emit({ task_id: 't1', seq: 5, kind: 'step_finished', name: 'draft', status: 'failed', attempt: 1, error: { ...busy, message: 'still busy' }, at: '2026-01-01T00:00:01.500Z' });
    expect(steps()[1]!.error?.message).toBe('still busy');
    emit({ task_id: 't1', seq: 6, kind: 'step_finished', name: 'draft', status: 'succeeded', attempt: 2, output: { text: 'hi' }, at: '2026-01-01T00:00:03.000Z' });
    emit({ task_id: 't1', seq: 7, kind: 'step_finished', name: 'search', status: 'failed', attempt: 2, error: busy, at: '2026-01-01T00:00:04.000Z' });
    emit({ task_id: 't1', seq: 8, kind: 'step_finished', name: 'draft', status: 'failed', attempt: 3, error: busy, at: '2026-01-01T00:00:05.000Z' });
    expect(steps()).toEqual([
      { name: 'search', status: 'succeeded', attempt: 1, output: { hits: 12 }, started_at: '2026-01-01T00:00:00.600Z', finished_at: '2026-01-01T00:00:00.900Z' },
      { name: 'draft', status: 'succeeded', attempt: 2, output: { text: 'hi' }, started_at: null, finished_at: '2026-01-01T00:00:03.000Z' },
    ]);
    // Not a status change, not a log line: the task only moves on in seq.
    const t = tasksApi.endpoints.getTask.select('t1')(store.getState()).data!;
    expect(t).toMatchObject({ status: 'running', seq: 8, output: null, error: null });
    expect(t.attempts).toMatchObject([{ number: 1, status: 'running' }]);
    expect(tasksApi.endpoints.getTaskLogs.select('t1')(store.getState()).data!.items).toEqual([]);
  });

  it('accepts step_finished messages from the wire', () => {
    const wire = { type: 'event', task_id: 't1', seq: 3, agent: 'slow', at: '2026-01-01T00:00:01Z', kind: 'step_finished', name: 'draft', status: 'succeeded', attempt: 1, output: 1 };
    expect(asTaskEvent(wire)).toEqual(wire);
    expect(asTaskEvent({ ...wire, kind: 'step_started' })).toBeNull();
  });

  it('takes waiting, resumed and signal_received from the wire: status and wait on details and lists, signals in the live stream', async () => {
    const { store, emit } = setup();
    await flush();
    const wait: TaskWait = { kind: 'children', name: 'join:#1', children: ['c1', 'c2'] };
    for (const kind of ['waiting', 'resumed', 'signal_received']) {
      const wire = { type: 'event', task_id: 't1', seq: 3, agent: 'slow', at: '2026-01-01T00:00:01Z', kind };
      expect(asTaskEvent(wire)).toEqual(wire);
    }
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', task('t1', { status: 'running', seq: 2 })));
    await store.dispatch(tasksApi.util.upsertQueryData('listTasks', { limit: 500 }, { items: [task('t1', { status: 'running', seq: 2 })], next_cursor: null }));
    await store.dispatch(tasksApi.endpoints.getTaskStream.initiate('t1'));
    const detail = () => tasksApi.endpoints.getTask.select('t1')(store.getState()).data!;
    const listed = () => tasksApi.endpoints.listTasks.select({ limit: 500 })(store.getState()).data!.items[0]!;

    emit({ task_id: 't1', seq: 3, kind: 'waiting', attempt: 1, wait });
    expect(detail()).toMatchObject({ status: 'waiting', wait, seq: 3 });
    // The run is over, not the task: its attempt is suspended, not failed.
    expect(detail().attempts).toMatchObject([{ number: 1, status: 'suspended', finished_at: '2026-01-01T00:00:01.000Z' }]);
    expect(listed()).toMatchObject({ status: 'waiting', wait });

    emit({ task_id: 't1', seq: 4, kind: 'signal_received', name: 'approval', payload: { approved: true } });
    emit({ task_id: 't1', seq: 4, kind: 'signal_received', name: 'approval', payload: { approved: true } });
    expect(tasksApi.endpoints.getTaskStream.select('t1')(store.getState()).data!.signals).toEqual([
      { seq: 4, at: '2026-01-01T00:00:01.000Z', name: 'approval', payload: { approved: true } },
    ]);
    expect(detail()).toMatchObject({ status: 'waiting', wait, seq: 4 });

    emit({ task_id: 't1', seq: 5, kind: 'resumed', reason: 'children', at: '2026-01-01T00:00:02.000Z' });
    expect(detail()).toMatchObject({ status: 'queued', wait: null, run_at: '2026-01-01T00:00:02.000Z', seq: 5 });
    expect(listed()).toMatchObject({ status: 'queued', wait: null });
  });

  it('takes a task page’s replay (from the first event) into the stream and the log, leaving the task and lists as loaded', async () => {
    const { store, emit } = setup();
    await flush();
    const done = task('t1', { status: 'succeeded', seq: 7, output: { content: 'Hello', usage: { prompt_tokens: 3, completion_tokens: 2 } }, finished_at: '2026-01-01T00:00:03.000Z' });
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', done));
    await store.dispatch(tasksApi.util.upsertQueryData('listTasks', { limit: 500 }, { items: [], next_cursor: null }));
    await store.dispatch(tasksApi.util.upsertQueryData('listTasks', { agent: 'slow', limit: 500 }, { items: [task('t1', { status: 'running', seq: 2 })], next_cursor: null }));
    await store.dispatch(tasksApi.util.upsertQueryData('getTaskLogs', 't1', { items: [{ seq: 3, attempt: 1, at: '2026-01-01T00:00:01.000Z', level: 'info', message: 'asking the model' }] }));
    await store.dispatch(tasksApi.endpoints.getTaskStream.initiate('t1'));

    // What the server sends a follower from seq 0: the stored log and stream, then the current state.
    const replay: EventInput[] = [
      { task_id: 't1', seq: 1, kind: 'status', status: 'queued', attempt: 0 },
      { task_id: 't1', seq: 2, kind: 'status', status: 'running', attempt: 1 },
      { task_id: 't1', seq: 3, kind: 'log', level: 'info', message: 'asking the model' },
      { task_id: 't1', seq: 4, kind: 'partial', data: { delta: 'Hel' } },
      { task_id: 't1', seq: 5, kind: 'partial', data: { delta: 'lo' } },
      { task_id: 't1', seq: 6, kind: 'log', level: 'info', message: 'done' },
      { task_id: 't1', seq: 7, kind: 'result', status: 'succeeded', attempt: 1, output: done.output, cached: false },
    ];
    for (const e of replay) emit(e);
    // Again (a second follower of the same events, or a reconnect): nothing doubles.
    for (const e of replay) emit(e);
    await streamApplied();

    const stream = tasksApi.endpoints.getTaskStream.select('t1')(store.getState()).data!;
    expect(stream.partials.map((p) => [p.seq, p.data])).toEqual([
      [4, { delta: 'Hel' }],
      [5, { delta: 'lo' }],
    ]);
    expect(tasksApi.endpoints.getTask.select('t1')(store.getState()).data).toEqual(done);
    expect(tasksApi.endpoints.getTaskLogs.select('t1')(store.getState()).data!.items.map((l) => [l.seq, l.message])).toEqual([
      [3, 'asking the model'],
      [6, 'done'],
    ]);
    // An old task's first event is no new task: lists that lack it do not get it...
    expect(tasksApi.endpoints.listTasks.select({ limit: 500 })(store.getState()).data!.items).toEqual([]);
    // ...while a row that is behind is brought up to date.
    expect(tasksApi.endpoints.listTasks.select({ agent: 'slow', limit: 500 })(store.getState()).data!.items[0]).toMatchObject({ status: 'succeeded', seq: 7 });
  });

  it('continues a running task’s replayed stream with live events, in seq order', async () => {
    const { store, emit } = setup();
    await flush();
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', task('t1', { status: 'running', seq: 4 })));
    await store.dispatch(tasksApi.endpoints.getTaskStream.initiate('t1'));
    // A live piece through the everything-subscription overtakes the task subscription's replay.
    emit({ task_id: 't1', seq: 5, kind: 'partial', data: 'C' });
    emit({ task_id: 't1', seq: 3, kind: 'partial', data: 'B' });
    emit({ task_id: 't1', seq: 2, kind: 'partial', data: 'A' });
    emit({ task_id: 't1', seq: 5, kind: 'partial', data: 'C' });
    emit({ task_id: 't1', seq: 6, kind: 'progress', progress: 0.75 });
    emit({ task_id: 't1', seq: 1, kind: 'progress', progress: 0.1 });
    await streamApplied();
    const stream = tasksApi.endpoints.getTaskStream.select('t1')(store.getState()).data!;
    expect(stream.partials.map((p) => p.data).join('')).toBe('ABC');
    expect(stream.progress).toBe(0.75);
    expect(tasksApi.endpoints.getTask.select('t1')(store.getState()).data!.seq).toBe(6);
  });

  it('applies a burst of partial output in one update of the stream', async () => {
    const { store, emit } = setup();
    await flush();
    await store.dispatch(tasksApi.util.upsertQueryData('getTask', 't1', task('t1', { status: 'running', seq: 2 })));
    await store.dispatch(tasksApi.endpoints.getTaskStream.initiate('t1'));
    const select = tasksApi.endpoints.getTaskStream.select('t1');
    const seen = new Set([select(store.getState()).data]);
    const unsubscribe = store.subscribe(() => seen.add(select(store.getState()).data));
    for (let seq = 3; seq < 503; seq++) emit({ task_id: 't1', seq, kind: 'partial', data: { delta: 'x' } });
    await streamApplied();
    unsubscribe();
    expect(select(store.getState()).data!.partials).toHaveLength(500);
    // The stream as it started, and as it is now: nothing in between.
    expect(seen.size).toBe(2);
  });

  it('subscribes to a watched task from the sequence number already loaded', async () => {
    const { store, opened } = setup();
    await flush();
    store.dispatch(watchTask({ taskId: 't9', since: 4 }));
    opened[0]!.callbacks.onClose({ neverOpened: false, authFailed: false });
    await new Promise((r) => setTimeout(r, 600));
    expect(opened.length).toBeGreaterThan(1);
    expect(opened.at(-1)!.watched.get('t9')).toBe(4);
  });
});

describe('a response that left before an event arrived', () => {
  it('is brought up to date with the newer events when it lands', async () => {
    const { store, emit } = setup();
    await flush();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stale = { items: [task('t1', { status: 'running', seq: 2, attempts: [{ number: 1, status: 'running', started_at: '2026-01-01T00:00:00.5Z' }] })], next_cursor: null };
    const { server } = await import('@/test/msw');
    const { http, HttpResponse } = await import('msw');
    server.listen({ onUnhandledRequest: 'bypass' });
    server.use(
      http.get('*/api/v1/tasks', async () => {
        await gate;
        return HttpResponse.json(stale);
      }),
    );
    const pending = store.dispatch(tasksApi.endpoints.listTasks.initiate({ limit: 50 }));
    // The task finishes while the (older) list response is still on its way.
    emit({ task_id: 't1', seq: 4, kind: 'result', status: 'succeeded', attempt: 1, output: { ok: true }, cached: false });
    release();
    await pending;
    await flush();
    const page = tasksApi.endpoints.listTasks.select({ limit: 50 })(store.getState()).data!;
    expect(page.items[0]).toMatchObject({ id: 't1', status: 'succeeded', seq: 4, output: { ok: true } });
    server.close();
  });

  it('gets the steps reported meanwhile, then asks again for their start times', async () => {
    const { store, emit } = setup();
    await flush();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const search = { name: 'search', status: 'succeeded', attempt: 1, output: 1, started_at: '2026-01-01T00:00:00.600Z', finished_at: '2026-01-01T00:00:00.900Z' };
    const draft = { name: 'draft', status: 'succeeded', attempt: 1, output: 2, started_at: '2026-01-01T00:00:01.000Z', finished_at: '2026-01-01T00:00:01.200Z' };
    let requests = 0;
    const { server } = await import('@/test/msw');
    const { http, HttpResponse } = await import('msw');
    server.listen({ onUnhandledRequest: 'bypass' });
    server.use(
      http.get('*/api/v1/tasks/t1/steps', async () => {
        requests += 1;
        if (requests === 1) {
          await gate;
          return HttpResponse.json({ items: [search] });
        }
        return HttpResponse.json({ items: [search, draft] });
      }),
    );
    const sub = store.dispatch(tasksApi.endpoints.getTaskSteps.initiate('t1'));
    // The step is recorded while the (older) list is on its way.
    emit({ task_id: 't1', seq: 4, kind: 'step_finished', name: 'draft', status: 'succeeded', attempt: 1, output: 2, at: draft.finished_at });
    release();
    await sub;
    await flush();
    expect(tasksApi.endpoints.getTaskSteps.select('t1')(store.getState()).data!.items.map((s) => s.name)).toEqual(['search', 'draft']);
    // Fetched again for when `draft` started, which its event did not say.
    await new Promise((r) => setTimeout(r, 100));
    expect(requests).toBe(2);
    expect(tasksApi.endpoints.getTaskSteps.select('t1')(store.getState()).data!.items).toEqual([search, draft]);
    sub.unsubscribe();
    server.close();
  });
});
