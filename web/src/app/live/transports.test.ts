import { http, HttpResponse } from 'msw';
import { describe, expect, it, vi, afterEach } from 'vitest';
import { server, useMockServer } from '@/test/msw';
import { openSse, openWebSocket, type CloseInfo } from './transports';
import type { TaskEvent } from '@/shared/api/events';
import type { AlertEvent } from '@/shared/api/types';

useMockServer();

class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static last: FakeWebSocket | null = null;
  readyState = FakeWebSocket.CONNECTING;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeWebSocket.last = this;
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = '') {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.({ code, reason });
  }
  open() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.();
  }
  receive(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

const ev = (seq: number): TaskEvent => ({ type: 'event', task_id: 't1', seq, agent: 'echo', at: '2026-01-01T00:00:00Z', kind: 'status', status: 'running', attempt: 1 });

afterEach(() => vi.unstubAllGlobals());

const alertEvent: AlertEvent = {
  id: 'a1',
  rule_id: 'r1',
  rule_name: 'queue',
  kind: 'queue_depth',
  state: 'firing',
  value: 12,
  threshold: 10,
  at: '2026-01-01T00:00:00Z',
  message: 'queue depth is 12',
  notify_status: 'none',
  notify_attempts: 0,
};

describe('WebSocket transport', () => {
  it('authenticates first, subscribes to everything and to watched tasks, answers pings', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const events: TaskEvent[] = [];
    const onOpen = vi.fn();
    const t = openWebSocket('ws://x/api/v1/ws', {
      token: 'tok',
      watched: new Map([['t1', 7]]),
      callbacks: { onOpen, onEvent: (e) => events.push(e), onClose: vi.fn() },
    });
    const ws = FakeWebSocket.last!;
    ws.open();
    expect(ws.sent).toEqual([
      { type: 'auth', token: 'tok' },
      { type: 'subscribe', all: true },
      { type: 'subscribe', task_id: 't1', since: 7 },
    ]);
    expect(onOpen).not.toHaveBeenCalled();
    ws.receive({ type: 'authenticated', user_id: 'u', role: 'admin' });
    expect(onOpen).toHaveBeenCalledTimes(1);
    ws.receive(ev(8));
    ws.receive({ type: 'ping' });
    expect(events).toEqual([ev(8)]);
    expect(ws.sent.at(-1)).toEqual({ type: 'pong' });
    t.watchTask('t2', undefined);
    t.unwatchTask('t2');
    expect(ws.sent.slice(-2)).toEqual([
      { type: 'subscribe', task_id: 't2' },
      { type: 'unsubscribe', task_id: 't2' },
    ]);
    t.close();
  });

  it('reports an auth failure when the server rejects the token', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    let closed: CloseInfo | null = null;
    openWebSocket('ws://x/api/v1/ws', { token: 'old', watched: new Map(), callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onClose: (i) => (closed = i) } });
    const ws = FakeWebSocket.last!;
    ws.open();
    ws.receive({ type: 'error', code: 'token_expired', message: 'expired' });
    expect(closed).toMatchObject({ authFailed: true });
  });

  it('resumes the everything-subscription from a time, and treats close code 4001 as an auth failure', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    let closed: CloseInfo | null = null;
    openWebSocket('ws://x/api/v1/ws', { token: 't', watched: new Map(), allSince: 1234, callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onClose: (i) => (closed = i) } });
    const ws = FakeWebSocket.last!;
    ws.open();
    expect(ws.sent[1]).toEqual({ type: 'subscribe', all: true, since: 1234 });
    ws.close(4001, 'authentication failed');
    expect(closed).toMatchObject({ authFailed: true });
  });

  it('counts a socket closed before authentication as never opened (falls back to SSE)', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    let closed: CloseInfo | null = null;
    openWebSocket('ws://x/api/v1/ws', { token: 't', watched: new Map(), callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onClose: (i) => (closed = i) } });
    FakeWebSocket.last!.open();
    FakeWebSocket.last!.close(1011, 'proxy error');
    expect(closed).toMatchObject({ neverOpened: true, authFailed: false });
  });

  it('reports a socket that never opened (no gateway on this server)', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    let closed: CloseInfo | null = null;
    openWebSocket('ws://x/api/v1/ws', { token: 't', watched: new Map(), callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onClose: (i) => (closed = i) } });
    FakeWebSocket.last!.close(1006, '');
    expect(closed).toMatchObject({ neverOpened: true, authFailed: false });
  });
});

function sseBody(chunks: string[]) {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
}

describe('SSE transport', () => {
  it('streams /api/v1/events with the bearer token and resumes watched tasks with ?since=', async () => {
    const auth: string[] = [];
    let since: string | null = null;
    server.use(
      http.get('*/api/v1/events', ({ request }) => {
        auth.push(request.headers.get('authorization') ?? '');
        return new HttpResponse(sseBody([`data: ${JSON.stringify(ev(1))}\n\n: keep-alive\n\n`, `data: ${JSON.stringify(ev(2)).slice(0, 10)}`, `${JSON.stringify(ev(2)).slice(10)}\n\n`]), {
          headers: { 'content-type': 'text/event-stream' },
        });
      }),
      http.get('*/api/v1/tasks/t1/events', ({ request }) => {
        since = new URL(request.url).searchParams.get('since');
        return new HttpResponse(sseBody([`id: 9\ndata: ${JSON.stringify(ev(9))}\n\n`]), { headers: { 'content-type': 'text/event-stream' } });
      }),
    );
    const events: number[] = [];
    const closed = new Promise<CloseInfo>((resolve) => {
      openSse('http://localhost:3000', {
        token: 'tok',
        watched: new Map([['t1', 8]]),
        callbacks: { onOpen: vi.fn(), onEvent: (e) => events.push(e.seq), onClose: resolve },
      });
    });
    const info = await closed;
    expect(auth).toEqual(['Bearer tok']);
    expect(since).toBe('8');
    expect(events.sort()).toEqual([1, 2, 9]);
    expect(info.neverOpened).toBe(false);
  });

  it('reports a rejected token', async () => {
    server.use(http.get('*/api/v1/events', () => HttpResponse.json({ error: { code: 'token_expired', message: 'x', request_id: 'r' } }, { status: 401 })));
    const info = await new Promise<CloseInfo>((resolve) => {
      openSse('http://localhost:3000', { token: 'old', watched: new Map(), callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onClose: resolve } });
    });
    expect(info).toMatchObject({ authFailed: true, neverOpened: true });
  });

  it('follows /api/v1/alerts/stream when alert events are wanted, without letting it end the connection', async () => {
    let alertAuth = '';
    server.use(
      http.get('*/api/v1/events', () => new HttpResponse(sseBody([`data: ${JSON.stringify(ev(1))}\n\n`]), { headers: { 'content-type': 'text/event-stream' } })),
      http.get('*/api/v1/alerts/stream', ({ request }) => {
        alertAuth = request.headers.get('authorization') ?? '';
        return new HttpResponse(sseBody([`event: alert\ndata: ${JSON.stringify(alertEvent)}\n\n`, `event: other\ndata: {}\n\n`]), { headers: { 'content-type': 'text/event-stream' } });
      }),
    );
    const alerts: AlertEvent[] = [];
    await new Promise<CloseInfo>((resolve) => {
      openSse('http://localhost:3000', {
        token: 'tok',
        watched: new Map(),
        callbacks: {
          onOpen: vi.fn(),
          onEvent: vi.fn(),
          onAlert: (a) => alerts.push(a),
          onClose: resolve,
        },
      });
    });
    await vi.waitFor(() => expect(alerts).toEqual([alertEvent]));
    expect(alertAuth).toBe('Bearer tok');
  });
});

describe('WebSocket alerts', () => {
  it('subscribes to alerts when asked and passes alert messages on; ignores malformed ones', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const alerts: AlertEvent[] = [];
    const onServerError = vi.fn();
    const t = openWebSocket('ws://x/api/v1/ws', {
      token: 'tok',
      watched: new Map(),
      callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onAlert: (a) => alerts.push(a), onClose: vi.fn(), onServerError },
    });
    const ws = FakeWebSocket.last!;
    ws.open();
    expect(ws.sent).toEqual([
      { type: 'auth', token: 'tok' },
      { type: 'subscribe', all: true },
      { type: 'subscribe', alerts: true },
    ]);
    ws.receive({ type: 'authenticated', user_id: 'u', role: 'viewer' });
    ws.receive({ type: 'alert', event: alertEvent });
    ws.receive({ type: 'alert', event: { id: 'x' } });
    ws.receive({ type: 'alert' });
    expect(alerts).toEqual([alertEvent]);
    // An older server without alerts answers the subscription with an error: not fatal.
    ws.receive({ type: 'error', code: 'bad_request', message: 'name exactly one of task_id, agent, all: true' });
    expect(onServerError).toHaveBeenCalledTimes(1);
    t.close();
  });

  it('does not subscribe to alerts without a handler', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const t = openWebSocket('ws://x/api/v1/ws', { token: 'tok', watched: new Map(), callbacks: { onOpen: vi.fn(), onEvent: vi.fn(), onClose: vi.fn() } });
    const ws = FakeWebSocket.last!;
    ws.open();
    expect(ws.sent).not.toContainEqual({ type: 'subscribe', alerts: true });
    t.close();
  });
});
