// The last few task events, so that a response which was already on its way when an event
// arrived (and overwrites the patched cache with an older snapshot) can be brought up to date.
import type { TaskEvent } from '@/shared/api/events';

const KEEP_MS = 60_000;
const KEEP_MAX = 2_000;

let recent: { at: number; event: TaskEvent }[] = [];

export function rememberEvent(event: TaskEvent, now = Date.now()): void {
  if (event.kind === 'partial' || event.kind === 'progress') return;
  recent.push({ at: now, event });
  if (recent.length > KEEP_MAX || now - recent[0]!.at > KEEP_MS) {
    recent = recent.filter((r, i) => now - r.at <= KEEP_MS && i >= recent.length - KEEP_MAX);
  }
}

/** Remembered events, oldest first, optionally for one task. */
export function recentEvents(taskId?: string): TaskEvent[] {
  const out: TaskEvent[] = [];
  for (const r of recent) if (taskId === undefined || r.event.task_id === taskId) out.push(r.event);
  return out;
}

export function forgetRecentEvents(): void {
  recent = [];
}
