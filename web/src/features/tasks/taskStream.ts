// A task's stream as its page shows it: progress, partial output (e.g. an LLM's tokens) and the
// signals received. The page follows the task from its first event (`since: 0`), so the server
// first replays what it kept and then sends live events; a live event may also arrive through
// the connection's everything-subscription before the replay reaches it. Everything here is
// therefore keyed by `seq`: applied once, kept in order, whichever way and order it came.
import type { TaskEvent } from '@/shared/api/events';

/**
 * Partial-output events kept per task, the newest: as many as a server keeps by default
 * (`queue.max_stream_events`), so a replay fits and a task streaming for hours does not grow
 * the page without bound.
 */
export const MAX_PARTIALS_KEPT = 10_000;
/** Signals received while a task page is open: the newest this many are kept. */
export const MAX_SIGNALS_SHOWN = 20;

export interface PartialEvent {
  seq: number;
  at: string;
  data: unknown;
}

export interface ReceivedSignal {
  seq: number;
  at: string;
  name: string;
  payload: unknown;
}

/** Progress and partial output (replayed from the server's store, then live), and signals. */
export interface TaskStream {
  progress: number | null;
  progressMessage: string | null;
  /** The seq of the progress event shown, so an older one arriving late does not replace it. */
  progressSeq: number;
  /** In `seq` order, at most {@link MAX_PARTIALS_KEPT}. */
  partials: PartialEvent[];
  /** Partial-output events this page let go of (the oldest) to stay within its bound. */
  partialsDropped: number;
  /** The server's notice that it no longer keeps the task's oldest stream events. */
  cutNotice: string | null;
  /** Signals received while the page is open (`signal_received`), oldest first. */
  signals: ReceivedSignal[];
}

export function emptyStream(): TaskStream {
  return { progress: null, progressMessage: null, progressSeq: 0, partials: [], partialsDropped: 0, cutNotice: null, signals: [] };
}

/** Where `seq` is or would go in items sorted by seq. */
export function seqIndex(items: readonly { seq: number }[], seq: number): number {
  let lo = 0;
  let hi = items.length;
  // Events almost always arrive in order: check the end first.
  if (hi > 0 && items[hi - 1]!.seq < seq) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function hasSeq(items: readonly { seq: number }[], seq: number): boolean {
  return items[seqIndex(items, seq)]?.seq === seq;
}

/**
 * The `log` event (level `warn`) a server sends to a follower from before the cut in place of
 * the stream events it no longer keeps. It names the setting that bounds them, which is how
 * it is told apart from the task's own log lines.
 */
export function isStreamCutNotice(event: TaskEvent): boolean {
  return event.kind === 'log' && event.level === 'warn' && event.message.includes('queue.max_stream_events');
}

/**
 * Whether `applyStreamEvent` would change the stream: lets the caller skip a store update for
 * the many events of a replay that are already in.
 */
export function streamWants(stream: TaskStream, event: TaskEvent, replayed: boolean): boolean {
  switch (event.kind) {
    case 'partial':
      if (stream.partialsDropped > 0 && stream.partials.length > 0 && event.seq < stream.partials[0]!.seq) return false;
      return !hasSeq(stream.partials, event.seq);
    case 'progress':
      return event.seq > stream.progressSeq;
    case 'log':
      return isStreamCutNotice(event) && stream.cutNotice !== event.message;
    case 'signal_received':
      // Signals are what arrived while the page was open, not what came before it.
      return !replayed && !stream.signals.some((s) => s.seq === event.seq);
    default:
      return false;
  }
}

/**
 * Applies one event to a task's stream (an Immer draft or a plain object). `replayed`: the
 * event is older than the task as loaded (it came with the replay of what the task kept).
 */
export function applyStreamEvent(stream: TaskStream, event: TaskEvent, replayed: boolean): boolean {
  if (!streamWants(stream, event, replayed)) return false;
  switch (event.kind) {
    case 'partial': {
      const i = seqIndex(stream.partials, event.seq);
      const piece = { seq: event.seq, at: event.at, data: event.data };
      if (i === stream.partials.length) stream.partials.push(piece);
      else stream.partials.splice(i, 0, piece);
      const over = stream.partials.length - MAX_PARTIALS_KEPT;
      if (over > 0) {
        stream.partials.splice(0, over);
        stream.partialsDropped += over;
      }
      return true;
    }
    case 'progress':
      stream.progressSeq = event.seq;
      if (typeof event.progress === 'number') stream.progress = event.progress;
      if (event.message) stream.progressMessage = event.message;
      return true;
    case 'log':
      stream.cutNotice = event.message;
      return true;
    case 'signal_received':
      stream.signals.push({ seq: event.seq, at: event.at, name: event.name, payload: event.payload });
      stream.signals.sort((a, b) => a.seq - b.seq);
      if (stream.signals.length > MAX_SIGNALS_SHOWN) stream.signals.splice(0, stream.signals.length - MAX_SIGNALS_SHOWN);
      return true;
    default:
      return false;
  }
}

/** The text of a partial-output event (`"..."`, or `{"delta"|"text"|"token"|"content": "..."}`), if it is text. */
export function partialText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (typeof data === 'object' && data !== null) {
    for (const key of ['text', 'token', 'delta', 'content']) {
      const v = (data as Record<string, unknown>)[key];
      if (typeof v === 'string') return v;
    }
  }
  return null;
}

/** All partials joined as text, or null when any of them is not text. */
export function streamedText(partials: readonly PartialEvent[]): string | null {
  let text = '';
  for (const p of partials) {
    const piece = partialText(p.data);
    if (piece === null) return null;
    text += piece;
  }
  return text;
}
