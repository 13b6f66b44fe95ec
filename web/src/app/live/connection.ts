// Keeps one live connection up while signed in: WebSocket first, SSE when the server has no
// WebSocket gateway; reconnects with backoff (full jitter), refreshes the token when it is
// rejected, and resubscribes watched tasks from the last sequence number seen.
import type { TaskEvent } from '@/shared/api/events';
import type { AlertEvent } from '@/shared/api/types';
import { openSse, openWebSocket, type CloseInfo, type Transport, type TransportKind, type TransportOptions } from './transports';

export type LiveStatus = 'idle' | 'connecting' | 'live' | 'reconnecting';

export interface ConnectionDeps {
  origin: string;
  /** A usable access token (refreshed if about to expire), or null when signed out. */
  getToken(): Promise<string | null>;
  /** Called when the server rejected `token`; resolves true when a new one is available. */
  refresh(token: string): Promise<boolean>;
  onEvent(event: TaskEvent): void;
  /** Alert events (firing/resolved); without it the connection does not subscribe to them. */
  onAlert?(event: AlertEvent): void;
  onStatus(status: LiveStatus, transport: TransportKind | null, detail?: string): void;
  /** After a reconnect: events may have been missed for tasks nobody watched. */
  onResumed(): void;
  openWebSocket?: (url: string, opts: TransportOptions) => Transport;
  openSse?: (origin: string, opts: TransportOptions) => Transport;
  random?: () => number;
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15_000;
const MAX_TRACKED_TASKS = 10_000;

export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.max(100, Math.floor(random() * ceiling));
}

export class LiveConnection {
  private transport: Transport | null = null;
  private running = false;
  private failures = 0;
  private everOpened = false;
  private preferWebSocket = true;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private generation = 0;
  /**
   * Highest sequence number seen per task, for resubscribing after a reconnect. Events are
   * not dropped here: an event may arrive before the data it patches has loaded, and a
   * task's own subscription then replays it. Applying events is idempotent by seq.
   */
  private readonly lastSeq = new Map<string, number>();
  /** Watched task id → number of watchers. */
  private readonly watchers = new Map<string, number>();
  private readonly hintedSince = new Map<string, number>();
  /** Time of the newest event seen (Unix ms): where a resumed everything-subscription starts. */
  private lastEventAt: number | undefined;

  constructor(private readonly deps: ConnectionDeps) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.everOpened = false;
    this.preferWebSocket = true;
    void this.connect();
  }

  stop(): void {
    this.running = false;
    this.generation++;
    clearTimeout(this.retryTimer);
    this.transport?.close();
    this.transport = null;
    this.lastSeq.clear();
    this.lastEventAt = undefined;
    this.deps.onStatus('idle', null);
  }

  get transportKind(): TransportKind | null {
    return this.transport?.kind ?? null;
  }

  watchTask(taskId: string, since?: number): void {
    if (since !== undefined) this.hintedSince.set(taskId, since);
    const n = this.watchers.get(taskId) ?? 0;
    this.watchers.set(taskId, n + 1);
    if (n === 0) this.transport?.watchTask(taskId, this.sinceFor(taskId));
  }

  unwatchTask(taskId: string): void {
    const n = this.watchers.get(taskId) ?? 0;
    if (n <= 1) {
      this.watchers.delete(taskId);
      this.hintedSince.delete(taskId);
      this.transport?.unwatchTask(taskId);
    } else {
      this.watchers.set(taskId, n - 1);
    }
  }

  /** Where a task's subscription starts: what its page has loaded, else the last seen. */
  private sinceFor(taskId: string): number | undefined {
    return this.hintedSince.get(taskId) ?? this.lastSeq.get(taskId);
  }

  private track(event: TaskEvent): void {
    const last = this.lastSeq.get(event.task_id);
    if (last === undefined && this.lastSeq.size >= MAX_TRACKED_TASKS) {
      const oldest = this.lastSeq.keys().next().value;
      if (oldest !== undefined) this.lastSeq.delete(oldest);
    }
    if (last === undefined || event.seq > last) this.lastSeq.set(event.task_id, event.seq);
    if (this.hintedSince.has(event.task_id)) this.hintedSince.set(event.task_id, Math.max(this.hintedSince.get(event.task_id)!, event.seq));
    const at = Date.parse(event.at);
    if (!Number.isNaN(at)) this.lastEventAt = Math.max(this.lastEventAt ?? 0, at);
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    this.deps.onStatus(this.everOpened ? 'reconnecting' : 'connecting', null);
    const token = await this.deps.getToken();
    if (generation !== this.generation || !this.running) return;
    if (!token) {
      this.stop();
      return;
    }
    const watched = new Map<string, number | undefined>();
    for (const taskId of this.watchers.keys()) watched.set(taskId, this.sinceFor(taskId));
    const kind: TransportKind = this.preferWebSocket ? 'websocket' : 'sse';
    const opts: TransportOptions = {
      token,
      watched,
      allSince: this.lastEventAt,
      callbacks: {
        onOpen: () => {
          if (generation !== this.generation) return;
          const resumed = this.everOpened;
          this.everOpened = true;
          this.failures = 0;
          this.deps.onStatus('live', kind);
          if (resumed) this.deps.onResumed();
        },
        onEvent: (event) => {
          if (generation !== this.generation) return;
          this.track(event);
          this.deps.onEvent(event);
        },
        onAlert: this.deps.onAlert
          ? (event) => {
              if (generation === this.generation) this.deps.onAlert?.(event);
            }
          : undefined,
        onClose: (info) => {
          if (generation !== this.generation) return;
          void this.closed(kind, token, info);
        },
      },
    };
    const origin = this.deps.origin;
    this.transport =
      kind === 'websocket'
        ? (this.deps.openWebSocket ?? openWebSocket)(origin.replace(/^http/, 'ws') + '/api/v1/ws', opts)
        : (this.deps.openSse ?? openSse)(origin, opts);
  }

  private async closed(kind: TransportKind, token: string, info: CloseInfo): Promise<void> {
    this.transport = null;
    if (!this.running) return;
    if (info.authFailed) {
      const ok = await this.deps.refresh(token);
      if (!this.running) return;
      if (!ok) {
        this.stop();
        return;
      }
      void this.connect();
      return;
    }
    if (kind === 'websocket' && info.neverOpened && this.preferWebSocket) {
      // No WebSocket gateway here (or the server is down): try Server-Sent Events at once.
      this.preferWebSocket = false;
      void this.connect();
      return;
    }
    // Next time, try the WebSocket again: a restarted server may have gained it.
    if (kind === 'sse') this.preferWebSocket = true;
    const delay = backoffDelay(this.failures++, this.deps.random);
    this.deps.onStatus('reconnecting', null, info.reason);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}
