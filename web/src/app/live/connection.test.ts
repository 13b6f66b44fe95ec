import { describe, expect, it, vi, afterEach } from 'vitest';
import type { TaskEvent } from '@/shared/api/events';
import { LiveConnection, backoffDelay, type ConnectionDeps } from './connection';
import type { Transport, TransportOptions } from './transports';

interface FakeTransport extends Transport {
  opts: TransportOptions;
  watched: string[];
  closed: boolean;
}

function fakeOpener(kind: 'websocket' | 'sse', log: FakeTransport[]) {
  return (_url: string, opts: TransportOptions): Transport => {
    const t: FakeTransport = {
      kind,
      opts,
      watched: [],
      closed: false,
      watchTask(id) {
        t.watched.push(id);
      },
      unwatchTask() {},
      close() {
        t.closed = true;
      },
    };
    log.push(t);
    return t;
  };
}

function event(taskId: string, seq: number): TaskEvent {
  return { type: 'event', task_id: taskId, seq, agent: 'echo', at: '2026-01-01T00:00:00Z', kind: 'log', level: 'info', message: `line ${seq}` };
}

function setup(overrides: Partial<ConnectionDeps> = {}) {
  const ws: FakeTransport[] = [];
  const sse: FakeTransport[] = [];
  const events: TaskEvent[] = [];
  const statuses: string[] = [];
  const conn = new LiveConnection({
    origin: 'http://localhost',
    getToken: async () => 'token-1',
    refresh: async () => true,
    onEvent: (e) => events.push(e),
    onStatus: (s, t) => statuses.push(`${s}:${t ?? '-'}`),
    onResumed: vi.fn(),
    openWebSocket: fakeOpener('websocket', ws),
    openSse: fakeOpener('sse', sse),
    random: () => 0.5,
    ...overrides,
  });
  return { conn, ws, sse, events, statuses };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => vi.useRealTimers());

describe('LiveConnection', () => {
  it('uses the WebSocket when it opens', async () => {
    const { conn, ws, sse, statuses } = setup();
    conn.start();
    await flush();
    expect(ws).toHaveLength(1);
    ws[0]!.opts.callbacks.onOpen();
    expect(statuses.at(-1)).toBe('live:websocket');
    expect(sse).toHaveLength(0);
    conn.stop();
    expect(ws[0]!.closed).toBe(true);
  });

  it('falls back to Server-Sent Events at once when the WebSocket never opens', async () => {
    const { conn, ws, sse, statuses } = setup();
    conn.start();
    await flush();
    ws[0]!.opts.callbacks.onClose({ neverOpened: true, authFailed: false });
    await flush();
    expect(sse).toHaveLength(1);
    sse[0]!.opts.callbacks.onOpen();
    expect(statuses.at(-1)).toBe('live:sse');
    conn.stop();
  });

  it('passes every event on (patching is idempotent) and remembers the newest seq per task', async () => {
    vi.useFakeTimers();
    const { conn, ws, events } = setup();
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    const cb = ws[0]!.opts.callbacks;
    cb.onOpen();
    cb.onEvent(event('a', 1));
    cb.onEvent(event('a', 2));
    cb.onEvent(event('a', 1));
    cb.onEvent(event('b', 1));
    expect(events.map((e) => `${e.task_id}${e.seq}`)).toEqual(['a1', 'a2', 'a1', 'b1']);
    conn.watchTask('a');
    cb.onClose({ neverOpened: false, authFailed: false });
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws[1]!.opts.watched.get('a')).toBe(2);
    conn.stop();
  });

  it('starts a watched task where its page says, even if newer events were seen', async () => {
    const { conn, ws } = setup();
    conn.start();
    await flush();
    const cb = ws[0]!.opts.callbacks;
    cb.onOpen();
    cb.onEvent(event('a', 5));
    const watched: [string, number | undefined][] = [];
    ws[0]!.watchTask = (id, since) => void watched.push([id, since]);
    conn.watchTask('a', 4);
    expect(watched).toEqual([['a', 4]]);
    conn.stop();
  });

  it('reconnects with backoff and resubscribes watched tasks from the last seen seq', async () => {
    vi.useFakeTimers();
    const onResumed = vi.fn();
    const { conn, ws } = setup({ onResumed });
    conn.watchTask('t1', 3);
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ws[0]!.opts.watched.get('t1')).toBe(3);
    const cb = ws[0]!.opts.callbacks;
    cb.onOpen();
    cb.onEvent(event('t1', 4));
    cb.onEvent(event('t1', 5));
    cb.onClose({ neverOpened: false, authFailed: false, reason: 'gone' });
    await vi.advanceTimersByTimeAsync(backoffDelay(0, () => 0.5) + 1);
    expect(ws).toHaveLength(2);
    expect(ws[1]!.opts.watched.get('t1')).toBe(5);
    expect(ws[1]!.opts.allSince).toBe(Date.parse('2026-01-01T00:00:00Z'));
    ws[1]!.opts.callbacks.onOpen();
    expect(onResumed).toHaveBeenCalledTimes(1);
    conn.stop();
  });

  it('refreshes the token when the server rejects it, then reconnects', async () => {
    const refresh = vi.fn(async () => true);
    let token = 'token-1';
    const { conn, ws } = setup({ refresh, getToken: async () => token });
    conn.start();
    await flush();
    token = 'token-2';
    ws[0]!.opts.callbacks.onClose({ neverOpened: false, authFailed: true });
    await flush();
    await flush();
    expect(refresh).toHaveBeenCalledWith('token-1');
    expect(ws).toHaveLength(2);
    expect(ws[1]!.opts.token).toBe('token-2');
    conn.stop();
  });

  it('stops when the session cannot be refreshed', async () => {
    const { conn, ws, statuses } = setup({ refresh: async () => false });
    conn.start();
    await flush();
    ws[0]!.opts.callbacks.onClose({ neverOpened: false, authFailed: true });
    await flush();
    await flush();
    expect(ws).toHaveLength(1);
    expect(statuses.at(-1)).toBe('idle:-');
  });

  it('asks the open transport for a task once, however many pages watch it', async () => {
    const { conn, ws } = setup();
    conn.start();
    await flush();
    ws[0]!.opts.callbacks.onOpen();
    conn.watchTask('x');
    conn.watchTask('x');
    expect(ws[0]!.watched).toEqual(['x']);
    conn.stop();
  });

  it('keeps backoff delays within the cap', () => {
    for (let i = 0; i < 20; i++) expect(backoffDelay(i, () => 0.999)).toBeLessThanOrEqual(15_000);
    expect(backoffDelay(0, () => 0)).toBeGreaterThanOrEqual(100);
  });
});
