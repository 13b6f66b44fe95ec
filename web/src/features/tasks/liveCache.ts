// Patches cached task data (details, lists, logs, steps, live output) with live events, so pages
// update without refetching. Anything an event cannot tell exactly (a new task's input, a
// finished attempt's worker, queue counts) is refetched shortly after, at most once a second.
import type { MiddlewareAPI, ThunkDispatch, UnknownAction } from '@reduxjs/toolkit';
import { api } from '@/app/api';
import type { TaskEvent } from '@/shared/api/events';
import { TERMINAL_STATUSES } from '@/shared/api/types';
import { rememberEvent } from './recentEvents';
import { applyEventToTask, applyStepEvent, eventStatus, listAccepts, taskFromFirstEvent } from './taskEvents';
import { tasksApi, type TaskListArgs } from './tasksApi';

// RTK Query thunks are typed against the full root state, which this module does not know.
type Dispatch = ThunkDispatch<any, unknown, UnknownAction>;
type RootLike = Parameters<typeof tasksApi.util.selectCachedArgsForQuery>[0];

/** Lists up to this size get refetched after new tasks appear (bigger ones rely on patches). */
const REFETCH_LIST_LIMIT = 100;
const REFETCH_DELAY_MS = 1_000;
/** Signals received while a task page is open: the newest this many are kept. */
const MAX_SIGNALS_SHOWN = 20;

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
  rememberEvent(event);
  const status = eventStatus(event);

  if (tasksApi.endpoints.getTask.select(id)(state).data) {
    dispatch(tasksApi.util.updateQueryData('getTask', id, (task) => void applyEventToTask(task, event)));
  }

  if (status !== null) {
    let needsRefetch = false;
    for (const args of tasksApi.util.selectCachedArgsForQuery(state, 'listTasks') as TaskListArgs[]) {
      if (!tasksApi.endpoints.listTasks.select(args)(state).data) {
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
    later(dispatch, 'queues', ['Queue']);
    // A finished task's artifacts are complete: fetch them again if a page shows them.
    if (TERMINAL_STATUSES.has(status)) later(dispatch, `task:${id}`, [{ type: 'Task', id }, { type: 'TaskLogs', id }, { type: 'TaskArtifacts', id }]);
  }

  if (event.kind === 'log' && tasksApi.endpoints.getTaskLogs.select(id)(state).data) {
    dispatch(
      tasksApi.util.updateQueryData('getTaskLogs', id, (logs) => {
        if (logs.items.some((l) => l.seq === event.seq)) return;
        const task = tasksApi.endpoints.getTask.select(id)(state).data;
        const attempt = task?.attempts.at(-1)?.number ?? 0;
        logs.items.push({ seq: event.seq, attempt, at: event.at, level: event.level, message: event.message });
        logs.items.sort((a, b) => a.seq - b.seq);
      }),
    );
  }

  if (event.kind === 'step_finished' && tasksApi.endpoints.getTaskSteps.select(id)(state).data) {
    const patch = dispatch(tasksApi.util.updateQueryData('getTaskSteps', id, (steps) => void applyStepEvent(steps.items, event)));
    // The event does not say when the step started: the list, fetched shortly, does.
    if (patch.patches.length > 0) later(dispatch, `steps:${id}`, [{ type: 'TaskSteps', id }]);
  }

  if (event.kind === 'signal_received' && tasksApi.endpoints.getTaskStream.select(id)(state).data) {
    dispatch(
      tasksApi.util.updateQueryData('getTaskStream', id, (stream) => {
        if (stream.signals.some((r) => r.seq === event.seq)) return;
        stream.signals.push({ seq: event.seq, at: event.at, name: event.name, payload: event.payload });
        if (stream.signals.length > MAX_SIGNALS_SHOWN) stream.signals.splice(0, stream.signals.length - MAX_SIGNALS_SHOWN);
      }),
    );
  }

  if ((event.kind === 'partial' || event.kind === 'progress') && tasksApi.endpoints.getTaskStream.select(id)(state).data) {
    dispatch(
      tasksApi.util.updateQueryData('getTaskStream', id, (stream) => {
        if (event.kind === 'partial') {
          if (!stream.partials.some((p) => p.seq === event.seq)) stream.partials.push({ seq: event.seq, at: event.at, data: event.data });
        } else {
          if (typeof event.progress === 'number') stream.progress = event.progress;
          if (event.message) stream.progressMessage = event.message;
        }
      }),
    );
  }
}

/** After a reconnect, events for unwatched tasks may be missing: refetch what is shown. */
export function refetchAfterReconnect(store: MiddlewareAPI): void {
  (store.dispatch as Dispatch)(api.util.invalidateTags(['TaskList', 'Queue', 'Task', 'TaskLogs', 'TaskSteps']));
}
