// Pure functions that apply a live task event to task data.
import type { TaskEvent } from '@/shared/api/events';
import type { Attempt, Task, TaskStatus } from '@/shared/api/types';
import type { TaskListArgs, TaskStep } from './tasksApi';

function attemptNumbered(task: Task, n: number): Attempt | undefined {
  return task.attempts.find((a) => a.number === n);
}

function openAttempt(task: Task, n: number, at: string): Attempt {
  let a = attemptNumbered(task, n);
  if (!a) {
    a = { number: n, status: 'running', started_at: at, finished_at: null, worker: null, worker_id: null, error: null };
    task.attempts.push(a);
    task.attempts.sort((x, y) => x.number - y.number);
  }
  return a;
}

function closeAttempt(task: Task, n: number, at: string, status: Attempt['status'], event: TaskEvent): void {
  if (n <= 0) return;
  const a = openAttempt(task, n, at);
  if (a.status === 'running') {
    a.status = status;
    a.finished_at = at;
  }
  if ((event.kind === 'status' || event.kind === 'error') && event.error) a.error = event.error;
}

/** Mutates `task` (an Immer draft or a plain object). Returns false for stale events. */
export function applyEventToTask(task: Task, event: TaskEvent): boolean {
  if (event.task_id !== task.id || event.seq <= task.seq) return false;
  task.seq = event.seq;
  task.updated_at = event.at;
  switch (event.kind) {
    case 'status': {
      task.status = event.status;
      if (event.run_at) task.run_at = event.run_at;
      if (event.status === 'running') {
        task.started_at ??= event.at;
        openAttempt(task, event.attempt, event.at);
      } else if (event.status === 'retrying' || (event.status === 'queued' && event.error)) {
        closeAttempt(task, event.attempt, event.at, 'failed', event);
        task.error = event.error ?? task.error;
      } else if (event.status === 'cancelled') {
        closeAttempt(task, event.attempt, event.at, 'cancelled', event);
        task.finished_at = event.at;
        task.cancel_requested = true;
      } else if (event.status === 'queued') {
        // A replay: the task starts over.
        task.finished_at = null;
        task.error = null;
        task.output = null;
      }
      break;
    }
    case 'result':
      task.status = event.status;
      task.output = event.output;
      task.cached = event.cached;
      task.error = null;
      task.finished_at = event.at;
      closeAttempt(task, event.attempt, event.at, 'succeeded', event);
      break;
    case 'error':
      task.status = event.status;
      task.error = event.error;
      task.finished_at = event.at;
      if (event.fallback_task_id) task.fallback_task_id = event.fallback_task_id;
      closeAttempt(task, event.attempt, event.at, 'failed', event);
      break;
    case 'step_finished':
      // Steps are kept apart (`getTaskSteps`, see `applyStepEvent`): the task only moves on in `seq`.
      break;
    case 'waiting':
      // The run is over, not the task.
      task.status = 'waiting';
      task.wait = event.wait;
      closeAttempt(task, event.attempt, event.at, 'suspended', event);
      break;
    case 'resumed':
      task.status = 'queued';
      task.run_at = event.at;
      break;
    case 'signal_received':
      // Kept apart too (the live stream, see liveCache.ts); `resumed` follows if it ends the wait.
      break;
    default:
      break;
  }
  // A task says what it waits for only while it waits.
  if (task.status !== 'waiting' && task.wait) task.wait = null;
  return true;
}

/**
 * Records a `step_finished` event in a task's steps (an Immer draft or a plain array), which
 * stay in first-recorded order: a new name is appended; a failed step is replaced in place by
 * a later report of it; a succeeded step is final (as on the server), so an older or repeated
 * report never overwrites it. The event does not say when the step started: `started_at` is
 * null until the list is fetched again. Returns whether anything changed.
 */
export function applyStepEvent(steps: TaskStep[], event: TaskEvent): boolean {
  if (event.kind !== 'step_finished') return false;
  const i = steps.findIndex((s) => s.name === event.name);
  const have = i >= 0 ? steps[i]! : undefined;
  if (have) {
    if (have.status === 'succeeded') return false;
    // Failed before: only a report that finished later replaces it (not this one again).
    if (event.status === 'failed' && !(Date.parse(event.at) > Date.parse(have.finished_at))) return false;
  }
  const step: TaskStep = { name: event.name, status: event.status, attempt: event.attempt, started_at: null, finished_at: event.at };
  if (event.status === 'succeeded') step.output = event.output ?? null;
  if (event.error) step.error = event.error;
  if (have) steps[i] = step;
  else steps.push(step);
  return true;
}

/** The task's status after this event, if the event changes it. */
export function eventStatus(event: TaskEvent): TaskStatus | null {
  switch (event.kind) {
    case 'status':
    case 'result':
    case 'error':
      return event.status;
    case 'waiting':
      return 'waiting';
    case 'resumed':
      return 'queued';
    default:
      return null;
  }
}

/** A task as far as its first event tells (until the list is refetched). */
export function taskFromFirstEvent(event: TaskEvent): Task {
  const task: Task = {
    id: event.task_id,
    agent: event.agent,
    status: 'queued',
    priority: 0,
    input: null,
    output: null,
    error: null,
    cached: false,
    owner_id: event.owner_id ?? null,
    idempotency_key: null,
    run_at: event.at,
    created_at: event.at,
    updated_at: event.at,
    started_at: null,
    finished_at: null,
    attempts: [],
    parent_id: null,
    fallback_of: null,
    fallback_task_id: null,
    trace_id: null,
    cancel_requested: false,
    seq: event.seq - 1,
  };
  applyEventToTask(task, event);
  return task;
}

/** Whether a task with this status (and creation time) belongs in a list with these filters. */
export function listAccepts(args: TaskListArgs, agent: string, status: TaskStatus, createdAt?: string): boolean {
  if (args.agent && args.agent !== agent) return false;
  // Events do not say who a task's parent is: such lists are refetched instead.
  if (args.parentId && createdAt !== undefined) return false;
  if (args.status && args.status.length > 0 && !args.status.includes(status)) return false;
  if (createdAt !== undefined) {
    const t = Date.parse(createdAt);
    if (args.createdAfter && t < Date.parse(args.createdAfter)) return false;
    if (args.createdBefore && t >= Date.parse(args.createdBefore)) return false;
  }
  return true;
}

/** Brings a fetched list page up to date with events newer than it; drops rows that left its filter. */
export function catchUpPage(page: { items: Task[] }, args: TaskListArgs, events: TaskEvent[]): void {
  if (events.length === 0) return;
  const byId = new Map(page.items.map((t) => [t.id, t]));
  for (const e of events) {
    const t = byId.get(e.task_id);
    if (t) applyEventToTask(t, e);
  }
  page.items = page.items.filter((t) => listAccepts(args, t.agent, t.status));
}
