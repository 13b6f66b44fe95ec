// Live task events, as sent over the WebSocket (`type: "event"`) and Server-Sent Events.
// The OpenAPI document does not describe stream payloads, so the shape is written here.
import type { AlertEvent, LogLevel, ResumeReason, StepStatus, TaskError, TaskStatus, TaskWait } from './types';

interface EventBase {
  type: 'event';
  task_id: string;
  seq: number;
  agent: string;
  owner_id?: string | null;
  at: string;
}

export type TaskEvent = EventBase &
  (
    | { kind: 'status'; status: TaskStatus; attempt: number; error?: TaskError | null; run_at?: string | null }
    | { kind: 'log'; level: LogLevel; message: string }
    | { kind: 'progress'; progress?: number | null; message?: string | null }
    | { kind: 'partial'; data: unknown }
    | { kind: 'result'; status: TaskStatus; attempt: number; output: unknown; cached: boolean }
    | { kind: 'error'; status: TaskStatus; attempt: number; error: TaskError; fallback_task_id?: string | null }
    // A durable step was recorded (`at` is when it finished). Not a status change, not a log line.
    | { kind: 'step_finished'; name: string; status: StepStatus; attempt: number; output?: unknown; error?: TaskError | null }
    // The run ended in a durable wait: the task is `waiting` for `wait`.
    | { kind: 'waiting'; attempt: number; wait: TaskWait }
    // The wait is over: the task is queued again.
    | { kind: 'resumed'; reason: ResumeReason }
    // A signal arrived (it resumes the task if the task waits for it, else it is kept for a later wait).
    | { kind: 'signal_received'; name: string; payload: unknown }
  );

export type TaskEventKind = TaskEvent['kind'];

const KINDS: ReadonlySet<string> = new Set(['status', 'log', 'progress', 'partial', 'result', 'error', 'step_finished', 'waiting', 'resumed', 'signal_received']);

/** Accepts a parsed message if it looks like a task event; anything else is ignored by callers. */
export function asTaskEvent(value: unknown): TaskEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.type !== 'event') return null;
  if (typeof v.task_id !== 'string' || typeof v.seq !== 'number' || typeof v.kind !== 'string') return null;
  if (!KINDS.has(v.kind)) return null;
  return value as TaskEvent;
}

/**
 * An alert event pushed live (`{"type":"alert","event":{…}}` over the WebSocket, `event: alert`
 * over SSE): the same object as `GET /api/v1/alerts/events` lists.
 */
export function asAlertEvent(value: unknown): AlertEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || typeof v.rule_id !== 'string' || typeof v.at !== 'string') return null;
  if (v.state !== 'firing' && v.state !== 'resolved') return null;
  return value as AlertEvent;
}
