// Patches cached task data (details, lists, logs, steps, live output) with live events, so pages
// update without refetching. Anything an event cannot tell exactly (a new task's input, a
// finished attempt's worker, queue counts) is refetched shortly after, at most once a second.
import type { MiddlewareAPI, ThunkDispatch, UnknownAction } from '@reduxjs/toolkit';
import { api } from '@/app/api';
import type { TaskEvent } from '@/shared/api/events';
import { TERMINAL_STATUSES } from '@/shared/api/types';
import { rememberEvent } from './recentEvents';
import { applyEventToTask, applyStepEvent, eventStatus, listAccepts, taskFromFirstEvent } from './taskEvents';
import { applyStreamEvent, hasSeq, seqIndex, streamWants } from './taskStream';
import { tasksApi, type TaskListArgs } from './tasksApi';

// RTK Query thunks are typed against the full root state, which this module does not know.
type Dispatch = ThunkDispatch<any, unknown, UnknownAction>;
type RootLike = Parameters<typeof tasksApi.util.selectCachedArgsForQuery>[0];

/** Lists up to this size get refetched after new tasks appear (bigger ones rely on patches). */
const REFETCH_LIST_LIMIT = 100;
const REFETCH_DELAY_MS = 1_000;

const pending = new Map<string, { tags: Parameters<typeof api.util.invalidateTags>[0] }>();
let flushTimer: ReturnType<typeof setTimeout> | undefined;

function later(dispatch: Dispatch, key: string, tags: Parameters<typeof api.util.invalidateTags>[0]): void {
  pending.set(key, { tags });
  if (flushTimer !== undefined) return;
  flushTimer = setTimeout(() => {
    flushTimer = undefined;
    const all = [...pending.values()].flatMap((p) => p.tags);
    pending.clear();
    if (all.length > 0) dispatch(api.util.invalidateTags(all));
  }, REFETCH_DELAY_MS);
}

export function applyTaskEventToCache(event: TaskEvent, store: MiddlewareAPI): void {
  const dispatch = store.dispatch as Dispatch;
  const state = store.getState() as RootLike;
  const id = event.task_id;
  const cached = tasksApi.endpoints.getTask.select(id)(state).data;
  // Not newer than the task as loaded: mostly the replay a task page asks for (it follows the
  // task from its first event, for the stream the task kept). The task already reflects it:
  // it may still bring list rows up to date, but it is no news that needs anything fetched.
  const replayed = cached !== undefined && event.seq <= cached.seq;
  if (!replayed) rememberEvent(event);
  const status = eventStatus(event);

  if (cached && !replayed) {
    dispatch(tasksApi.util.updateQueryData('getTask', id, (task) => void applyEventToTask(task, event)));
  }

  if (status !== null) {
    let needsRefetch = false;
    for (const args of tasksApi.util.selectCachedArgsForQuery(state, 'listTasks') as TaskListArgs[]) {
      const loaded = tasksApi.endpoints.listTasks.select(args)(state).data;
      if (replayed) {
        if (loaded?.items.some((t) => t.id === id && t.seq < event.seq)) {
          dispatch(tasksApi.util.updateQueryData('listTasks', args, (page) => void page.items.forEach((t) => t.id === id && applyEventToTask(t, event))));
        }
        continue;
      }
      if (!loaded) {
        // Still loading: its answer may predate this event, so ask again once it is in.
        needsRefetch = true;
        continue;
      }
      dispatch(
        tasksApi.util.updateQueryData('listTasks', args, (page) => {
          const i = page.items.findIndex((t) => t.id === id);
          if (i >= 0) {
            const task = page.items[i]!;
            applyEventToTask(task, event);
            if (!listAccepts(args, task.agent, task.status)) page.items.splice(i, 1);
          } else if (event.seq === 1 && !args.cursor) {
            // A task just created: show it at the top of first pages it belongs on.
            if (args.parentId) {
              // Children are created while their parent runs; a finished parent gets none.
              const parent = tasksApi.endpoints.getTask.select(args.parentId)(state).data;
              if (!parent || !TERMINAL_STATUSES.has(parent.status)) needsRefetch = true;
            } else if (args.q) {
              needsRefetch = true;
            } else if (listAccepts(args, event.agent, status, event.at)) {
              page.items.unshift(taskFromFirstEvent(event));
              if ((args.limit ?? 50) <= REFETCH_LIST_LIMIT) needsRefetch = true;
            }
          } else if (!args.cursor && listAccepts(args, event.agent, status) && args.status?.length) {
            // An older task moved into this status filter (e.g. became dead): fetch it.
            needsRefetch = true;
          }
        }),
      );
    }
    if (needsRefetch) later(dispatch, 'lists', ['TaskList']);
    if (!replayed) later(dispatch, 'queues', ['Queue']);
    // A finished task's artifacts are complete: fetch them again if a page shows them.
    if (!replayed && TERMINAL_STATUSES.has(status)) later(dispatch, `task:${id}`, [{ type: 'Task', id }, { type: 'TaskLogs', id }, { type: 'TaskArtifacts', id }]);
  }

  const logs = event.kind === 'log' ? tasksApi.endpoints.getTaskLogs.select(id)(state).data : undefined;
  if (event.kind === 'log' && logs && !hasSeq(logs.items, event.seq)) {
    dispatch(
      tasksApi.util.updateQueryData('getTaskLogs', id, (logs) => {
        const attempt = cached?.attempts.at(-1)?.number ?? 0;
        logs.items.splice(seqIndex(logs.items, event.seq), 0, { seq: event.seq, attempt, at: event.at, level: event.level, message: event.message });
      }),
    );
  }

  if (event.kind === 'step_finished' && tasksApi.endpoints.getTaskSteps.select(id)(state).data) {
    const patch = dispatch(tasksApi.util.updateQueryData('getTaskSteps', id, (steps) => void applyStepEvent(steps.items, event)));
    // The event does not say when the step started: the list, fetched shortly, does.
    if (patch.patches.length > 0) later(dispatch, `steps:${id}`, [{ type: 'TaskSteps', id }]);
  }

  const stream = tasksApi.endpoints.getTaskStream.select(id)(state).data;
  // Checked first: most events of a replay that is repeated are already in, and need no update.
  if (stream && streamWants(stream, event, replayed)) {
    if (event.kind === 'partial' || event.kind === 'progress') queueStreamEvent(dispatch, event, replayed);
    else dispatch(tasksApi.util.updateQueryData('getTaskStream', id, (draft) => void applyStreamEvent(draft, event, replayed)));
  }
}

/**
 * Progress and partial output come by the thousand (a replay, a model's tokens), and each
 * update of a stream copies its pieces: they are applied together, at most this often (and at
 * once when this many wait), so a replay costs a few updates and renders, not one per event.
 */
export const STREAM_FLUSH_MS = 25;
const STREAM_FLUSH_EVENTS = 2_000;

interface PendingStream {
  timer: ReturnType<typeof setTimeout> | undefined;
  count: number;
  byTask: Map<string, { event: TaskEvent; replayed: boolean }[]>;
}

// Per store (tests run many), keyed by its dispatch.
const pendingStreams = new WeakMap<Dispatch, PendingStream>();

function queueStreamEvent(dispatch: Dispatch, event: TaskEvent, replayed: boolean): void {
  let pending = pendingStreams.get(dispatch);
  if (!pending) {
    pending = { timer: undefined, count: 0, byTask: new Map() };
    pendingStreams.set(dispatch, pending);
  }
  const queue = pending.byTask.get(event.task_id);
  if (queue) queue.push({ event, replayed });
  else pending.byTask.set(event.task_id, [{ event, replayed }]);
  pending.count += 1;
  // A hidden tab's timers run late: a long wait is applied without one.
  if (pending.count >= STREAM_FLUSH_EVENTS) flushStreamEvents(dispatch);
  else pending.timer ??= setTimeout(() => flushStreamEvents(dispatch), STREAM_FLUSH_MS);
}

/** Applies the progress and partial output waiting for this store. */
function flushStreamEvents(dispatch: Dispatch): void {
  const pending = pendingStreams.get(dispatch);
  if (!pending) return;
  clearTimeout(pending.timer);
  pendingStreams.delete(dispatch);
  for (const [id, queue] of pending.byTask) {
    dispatch(tasksApi.util.updateQueryData('getTaskStream', id, (draft) => void queue.forEach(({ event, replayed }) => applyStreamEvent(draft, event, replayed))));
  }
}

/** After a reconnect, events for unwatched tasks may be missing: refetch what is shown. */
export function refetchAfterReconnect(store: MiddlewareAPI): void {
  (store.dispatch as Dispatch)(api.util.invalidateTags(['TaskList', 'Queue', 'Task', 'TaskLogs', 'TaskSteps']));
}
