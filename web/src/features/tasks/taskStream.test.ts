// A task's stream as its page keeps it: each event once, in seq order, within a bound.
import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '@/shared/api/events';
import { applyStreamEvent, emptyStream, isStreamCutNotice, MAX_PARTIALS_KEPT, seqIndex, streamedText, type TaskStream } from './taskStream';

const base = { type: 'event', task_id: 't1', agent: 'writer', at: '2026-01-01T00:00:01.000Z' } as const;
const partial = (seq: number, delta: string): TaskEvent => ({ ...base, seq, kind: 'partial', data: { delta } });
const CUT = 'the first 12 progress and partial-output events of this task are no longer kept: a task keeps its last 10 (queue.max_stream_events)';

function applyAll(stream: TaskStream, events: TaskEvent[], replayed = false) {
  for (const e of events) applyStreamEvent(stream, e, replayed);
  return stream;
}

describe('the stream of a task page', () => {
  it('joins the pieces in seq order, once each, whichever order and however often they come', () => {
    const stream = emptyStream();
    // A live piece first (through the everything-subscription), then the replay, which repeats it.
    applyAll(stream, [partial(5, 'world'), partial(2, 'Hello'), partial(3, ', '), partial(5, 'world'), partial(3, ', ')]);
    expect(stream.partials.map((p) => p.seq)).toEqual([2, 3, 5]);
    expect(streamedText(stream.partials)).toBe('Hello, world');
    expect(applyStreamEvent(stream, partial(2, 'Hello'), true)).toBe(false);
  });

  it('keeps the newest pieces only, counting the ones it let go of, and ignores older ones after that', () => {
    const stream = emptyStream();
    for (let seq = 1; seq <= MAX_PARTIALS_KEPT + 25; seq++) applyStreamEvent(stream, partial(seq, 'x'), false);
    expect(stream.partials).toHaveLength(MAX_PARTIALS_KEPT);
    expect(stream.partialsDropped).toBe(25);
    expect(stream.partials[0]!.seq).toBe(26);
    expect(applyStreamEvent(stream, partial(3, 'late'), true)).toBe(false);
    expect(stream.partials).toHaveLength(MAX_PARTIALS_KEPT);
  });

  it('shows the newest progress, even when an older one arrives later', () => {
    const stream = emptyStream();
    applyAll(stream, [
      { ...base, seq: 4, kind: 'progress', progress: 0.5, message: 'half way' },
      { ...base, seq: 2, kind: 'progress', progress: 0.1, message: 'starting' },
    ]);
    expect(stream).toMatchObject({ progress: 0.5, progressMessage: 'half way', progressSeq: 4 });
  });

  it('takes the server’s notice of a cut, not the task’s own warnings', () => {
    const cut: TaskEvent = { ...base, seq: 12, kind: 'log', level: 'warn', message: CUT };
    const own: TaskEvent = { ...base, seq: 13, kind: 'log', level: 'warn', message: 'disk almost full' };
    expect(isStreamCutNotice(cut)).toBe(true);
    expect(isStreamCutNotice(own)).toBe(false);
    expect(isStreamCutNotice({ ...cut, level: 'info' })).toBe(false);
    const stream = applyAll(emptyStream(), [cut, own], true);
    expect(stream.cutNotice).toBe(CUT);
  });

  it('lists signals that arrive while the page is open, not the ones replayed from before', () => {
    const stream = emptyStream();
    const signal = (seq: number, name: string): TaskEvent => ({ ...base, seq, kind: 'signal_received', name, payload: null });
    expect(applyStreamEvent(stream, signal(3, 'old'), true)).toBe(false);
    applyAll(stream, [signal(9, 'go'), signal(8, 'ready'), signal(9, 'go')]);
    expect(stream.signals.map((s) => s.name)).toEqual(['ready', 'go']);
  });

  it('reads text pieces as strings or {text|token|delta|content}; anything else is not text', () => {
    const p = (seq: number, data: unknown) => ({ seq, at: base.at, data });
    expect(streamedText([p(1, 'a'), p(2, { token: 'b' }), p(3, { delta: 'c' }), p(4, { content: 'd' }), p(5, { text: 'e' })])).toBe('abcde');
    expect(streamedText([p(1, 'a'), p(2, { rows: 3 })])).toBeNull();
    expect(streamedText([])).toBe('');
  });

  it('finds where a seq goes by bisection', () => {
    const items = [1, 3, 5, 7].map((seq) => ({ seq }));
    expect([0, 1, 2, 3, 7, 8].map((s) => seqIndex(items, s))).toEqual([0, 0, 1, 1, 3, 4]);
    expect(seqIndex([], 4)).toBe(0);
  });
});
