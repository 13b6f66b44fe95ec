// The two ways live events reach the browser. The WebSocket gateway (`/api/v1/ws`) is the
// primary one; Server-Sent Events over fetch (EventSource cannot send an Authorization
// header) are the fallback for servers without it.
import { asAlertEvent, asTaskEvent, type TaskEvent } from '@/shared/api/events';
import type { AlertEvent } from '@/shared/api/types';
import { SseParser } from './sseParser';

export type TransportKind = 'websocket' | 'sse';

export interface CloseInfo {
  /** The transport never got as far as a working connection. */
  neverOpened: boolean;
  /** The server rejected the access token. */
  authFailed: boolean;
  reason?: string;
}

export interface TransportCallbacks {
  onOpen(): void;
  onEvent(event: TaskEvent): void;
  /** An alert rule started or stopped firing (no backlog: lists are refetched on reconnect). */
  onAlert?(event: AlertEvent): void;
  onClose(info: CloseInfo): void;
  onServerError?(code: string, message: string): void;
}

export interface Transport {
  readonly kind: TransportKind;
  watchTask(taskId: string, since: number | undefined): void;
  unwatchTask(taskId: string): void;
  close(): void;
}

export interface TransportOptions {
  token: string;
  /** Tasks to follow individually (resumable), with the last sequence number seen. */
  watched: Map<string, number | undefined>;
  /** Resume the everything-subscription after this time (Unix ms), where supported. */
  allSince?: number;
  callbacks: TransportCallbacks;
}

const AUTH_CODES = new Set(['unauthorized', 'token_expired']);
/** The gateway's close code for a failed authentication. */
const CLOSE_UNAUTHORIZED = 4001;

/** How long a quiet WebSocket may stay silent before we ask whether it is still there. */
const WS_IDLE_MS = 45_000;
const WS_PONG_GRACE_MS = 15_000;

export function openWebSocket(url: string, opts: TransportOptions): Transport {
  const { callbacks } = opts;
  let opened = false;
  let live = false;
  let closed = false;
  let authFailed = false;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const ws = new WebSocket(url);

  const send = (msg: object) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  };

  const armIdle = () => {
    clearTimeout(idleTimer);
    clearTimeout(graceTimer);
    idleTimer = setTimeout(() => {
      send({ type: 'ping' });
      graceTimer = setTimeout(() => ws.close(4000, 'no heartbeat'), WS_PONG_GRACE_MS);
    }, WS_IDLE_MS);
  };

  const finish = (reason?: string) => {
    if (closed) return;
    closed = true;
    clearTimeout(idleTimer);
    clearTimeout(graceTimer);
    // A socket that opened but never got as far as `authenticated` (a proxy that cannot
    // pass WebSockets, say) counts as never opened, so the caller can fall back to SSE.
    callbacks.onClose({ neverOpened: !live, authFailed, reason: opened ? reason : `could not connect (${reason ?? 'no answer'})` });
  };

  const becameLive = () => {
    if (live) return;
    live = true;
    callbacks.onOpen();
  };

  ws.onopen = () => {
    opened = true;
    // The gateway reads the auth message first and the rest once it has answered.
    send({ type: 'auth', token: opts.token });
    send(opts.allSince === undefined ? { type: 'subscribe', all: true } : { type: 'subscribe', all: true, since: opts.allSince });
    for (const [taskId, since] of opts.watched) send(subscribeTask(taskId, since));
    // Alert events; a server without alerts answers with an error message, which is ignored.
    if (callbacks.onAlert) send({ type: 'subscribe', alerts: true });
    armIdle();
  };
  ws.onmessage = (m) => {
    armIdle();
    let msg: unknown;
    try {
      msg = JSON.parse(typeof m.data === 'string' ? m.data : '');
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    const type = (msg as { type?: unknown }).type;
    if (type === 'authenticated') {
      becameLive();
    } else if (type === 'event') {
      const event = asTaskEvent(msg);
      becameLive();
      if (event) callbacks.onEvent(event);
    } else if (type === 'alert') {
      const alert = asAlertEvent((msg as { event?: unknown }).event);
      if (alert) callbacks.onAlert?.(alert);
    } else if (type === 'ping') {
      send({ type: 'pong' });
    } else if (type === 'error') {
      const { code, message } = msg as { code?: string; message?: string };
      if (code && AUTH_CODES.has(code)) {
        authFailed = true;
        ws.close(4001, code);
      } else {
        callbacks.onServerError?.(code ?? 'error', message ?? '');
      }
    }
  };
  ws.onerror = () => {
    // onclose follows and says what to do next.
  };
  ws.onclose = (e) => {
    if (e.code === CLOSE_UNAUTHORIZED) authFailed = true;
    finish(e.reason || `closed (${e.code})`);
  };

  return {
    kind: 'websocket',
    watchTask(taskId, since) {
      send(subscribeTask(taskId, since));
    },
    unwatchTask(taskId) {
      send({ type: 'unsubscribe', task_id: taskId });
    },
    close() {
      closed = true;
      clearTimeout(idleTimer);
      clearTimeout(graceTimer);
      ws.onclose = null;
      ws.onmessage = null;
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000, 'bye');
    },
  };
}

function subscribeTask(taskId: string, since: number | undefined) {
  return since === undefined ? { type: 'subscribe', task_id: taskId } : { type: 'subscribe', task_id: taskId, since };
}

type StreamEnd = { kind: 'ended' } | { kind: 'auth' } | { kind: 'failed'; reason: string } | { kind: 'aborted' };

/** Reads one SSE response body, calling `onEvent` per task event. Resolves when it ends. */
async function readStream(
  url: string,
  token: string,
  signal: AbortSignal,
  onResponse: () => void,
  onMessage: (data: unknown, event: string) => void,
): Promise<StreamEnd> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal, cache: 'no-store' });
  } catch (e) {
    return signal.aborted ? { kind: 'aborted' } : { kind: 'failed', reason: String(e) };
  }
  if (response.status === 401) return { kind: 'auth' };
  if (!response.ok || !response.body) return { kind: 'failed', reason: `HTTP ${response.status}` };
  onResponse();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { kind: 'ended' };
      for (const message of parser.push(value)) {
        if (message.event === 'error') return { kind: 'failed', reason: message.data };
        try {
          onMessage(JSON.parse(message.data), message.event);
        } catch {
          // Not JSON: ignore the message, keep the stream.
        }
      }
    }
  } catch (e) {
    return signal.aborted ? { kind: 'aborted' } : { kind: 'failed', reason: String(e) };
  }
}

/**
 * SSE fallback: one stream of every visible task (`/api/v1/events`) plus, for each watched
 * task, its own resumable stream (`/api/v1/tasks/{id}/events?since=`) so nothing is missed
 * across reconnects.
 */
export function openSse(origin: string, opts: TransportOptions): Transport {
  const { callbacks, token } = opts;
  const onTaskMessage = (data: unknown) => {
    const event = asTaskEvent(data);
    if (event) callbacks.onEvent(event);
  };
  const main = new AbortController();
  const alerts = new AbortController();
  const perTask = new Map<string, AbortController>();
  let opened = false;
  let closed = false;

  const finish = (info: CloseInfo) => {
    if (closed) return;
    closed = true;
    main.abort();
    alerts.abort();
    for (const c of perTask.values()) c.abort();
    callbacks.onClose(info);
  };

  const followTask = (taskId: string, since: number | undefined) => {
    perTask.get(taskId)?.abort();
    const controller = new AbortController();
    perTask.set(taskId, controller);
    const url = `${origin}/api/v1/tasks/${encodeURIComponent(taskId)}/events${since === undefined ? '' : `?since=${since}`}`;
    void readStream(url, token, controller.signal, () => {}, onTaskMessage).then((end) => {
      if (perTask.get(taskId) === controller) perTask.delete(taskId);
      if (end.kind === 'auth') finish({ neverOpened: !opened, authFailed: true });
      // 'ended' is the normal close after the task's final event; a failed task stream is
      // picked up again on the next reconnect of the main stream.
    });
  };

  void readStream(
    `${origin}/api/v1/events`,
    token,
    main.signal,
    () => {
      opened = true;
      callbacks.onOpen();
    },
    onTaskMessage,
  ).then((end) => {
    if (end.kind === 'aborted') return;
    finish({ neverOpened: !opened, authFailed: end.kind === 'auth', reason: end.kind === 'failed' ? end.reason : 'stream ended' });
  });
  for (const [taskId, since] of opts.watched) followTask(taskId, since);
  // Alert events have their own stream; if it fails (an older server), tasks still flow.
  if (callbacks.onAlert) {
    const onAlert = callbacks.onAlert;
    void readStream(`${origin}/api/v1/alerts/stream`, token, alerts.signal, () => {}, (data, event) => {
      const alert = event === 'alert' || event === 'message' ? asAlertEvent(data) : null;
      if (alert) onAlert(alert);
    });
  }

  return {
    kind: 'sse',
    watchTask: followTask,
    unwatchTask(taskId) {
      perTask.get(taskId)?.abort();
      perTask.delete(taskId);
    },
    close() {
      closed = true;
      main.abort();
      alerts.abort();
      for (const c of perTask.values()) c.abort();
      perTask.clear();
    },
  };
}
