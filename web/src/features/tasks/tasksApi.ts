// Task endpoints. Lists and details are patched live by `liveCache.ts`.
import { api } from '@/app/api';
import type { Items, LogLine, SignalSent, Step, SubmitBody, Task, TaskPage, TaskStatus } from '@/shared/api/types';
import { recentEvents } from './recentEvents';
import { applyEventToTask, applyStepEvent, catchUpPage } from './taskEvents';
import { emptyStream, type TaskStream } from './taskStream';

export type { ReceivedSignal, TaskStream } from './taskStream';

export interface TaskListArgs {
  agent?: string;
  status?: TaskStatus[];
  createdAfter?: string;
  createdBefore?: string;
  /** Full-text search (servers that support `?q=`). */
  q?: string;
  /** Only the tasks this task submitted. */
  parentId?: string;
  cursor?: string;
  limit?: number;
}

export interface SignalArgs {
  taskId: string;
  name: string;
  /** Any JSON value: it is sent as the request body. */
  payload: unknown;
}

/**
 * A durable step as cached: as listed, except that a step just reported by a live event has
 * no `started_at` (the event does not tell it) until the list is fetched again.
 */
export type TaskStep = Omit<Step, 'started_at'> & { started_at: string | null };

export interface SubmitArgs extends SubmitBody {
  /** `?wait=`: answer when the task finishes or this long has passed. */
  wait?: string;
}

export function listQuery(args: TaskListArgs): Record<string, string | number> {
  const params: Record<string, string | number> = {};
  if (args.agent) params.agent = args.agent;
  if (args.status && args.status.length > 0) params.status = args.status.join(',');
  if (args.createdAfter) params.created_after = args.createdAfter;
  if (args.createdBefore) params.created_before = args.createdBefore;
  if (args.q) params.q = args.q;
  if (args.parentId) params.parent_id = args.parentId;
  if (args.cursor) params.cursor = args.cursor;
  if (args.limit) params.limit = args.limit;
  return params;
}

export const tasksApi = api.injectEndpoints({
  endpoints: (build) => ({
    listTasks: build.query<TaskPage, TaskListArgs>({
      query: (args) => ({ url: '/tasks', params: listQuery(args) }),
      providesTags: ['TaskList'],
      async onQueryStarted(args, { dispatch, queryFulfilled }) {
        if (!(await queryFulfilled.then(() => true, () => false))) return;
        const events = recentEvents();
        if (events.length > 0) dispatch(tasksApi.util.updateQueryData('listTasks', args, (page) => catchUpPage(page, args, events)));
      },
    }),
    getTask: build.query<Task, string>({
      query: (id) => `/tasks/${encodeURIComponent(id)}`,
      providesTags: (_r, _e, id) => [{ type: 'Task', id }],
      async onQueryStarted(id, { dispatch, queryFulfilled }) {
        if (!(await queryFulfilled.then(() => true, () => false))) return;
        const events = recentEvents(id);
        if (events.length > 0) dispatch(tasksApi.util.updateQueryData('getTask', id, (task) => void events.forEach((e) => applyEventToTask(task, e))));
      },
    }),
    getTaskLogs: build.query<Items<LogLine>, string>({
      query: (id) => `/tasks/${encodeURIComponent(id)}/logs`,
      providesTags: (_r, _e, id) => [{ type: 'TaskLogs', id }],
      async onQueryStarted(id, { dispatch, queryFulfilled }) {
        if (!(await queryFulfilled.then(() => true, () => false))) return;
        const lines = recentEvents(id).flatMap((e) => (e.kind === 'log' ? [e] : []));
        if (lines.length === 0) return;
        dispatch(
          tasksApi.util.updateQueryData('getTaskLogs', id, (logs) => {
            const have = new Set(logs.items.map((l) => l.seq));
            const attempt = logs.items.at(-1)?.attempt ?? 0;
            for (const l of lines) if (!have.has(l.seq)) logs.items.push({ seq: l.seq, attempt, at: l.at, level: l.level, message: l.message });
            logs.items.sort((a, b) => a.seq - b.seq);
          }),
        );
      },
    }),
    /** Durable steps, in first-recorded order; patched live by `step_finished` events. */
    getTaskSteps: build.query<Items<TaskStep>, string>({
      query: (id) => `/tasks/${encodeURIComponent(id)}/steps`,
      providesTags: (_r, _e, id) => [{ type: 'TaskSteps', id }],
      async onQueryStarted(id, { dispatch, queryFulfilled }) {
        if (!(await queryFulfilled.then(() => true, () => false))) return;
        const events = recentEvents(id).filter((e) => e.kind === 'step_finished');
        if (events.length === 0) return;
        const patch = dispatch(tasksApi.util.updateQueryData('getTaskSteps', id, (steps) => void events.forEach((e) => applyStepEvent(steps.items, e))));
        // A step this answer missed: fetch again for the start time the event does not tell.
        if (patch.patches.length > 0) dispatch(tasksApi.util.invalidateTags([{ type: 'TaskSteps', id }]));
      },
    }),
    /**
     * Filled only by events (see taskStream.ts): starts empty when a task page opens, which
     * then follows the task from its first event, so the server's replay of what the task
     * kept (progress, partial output) fills it before live events continue it.
     */
    getTaskStream: build.query<TaskStream, string>({
      queryFn: () => ({ data: emptyStream() }),
      keepUnusedDataFor: 30,
    }),
    submitTask: build.mutation<Task, SubmitArgs>({
      query: ({ wait, ...body }) => ({ url: '/tasks', method: 'POST', body, params: wait ? { wait } : undefined }),
      invalidatesTags: ['Queue'],
    }),
    cancelTask: build.mutation<Task, string>({
      query: (id) => ({ url: `/tasks/${encodeURIComponent(id)}/cancel`, method: 'POST' }),
      invalidatesTags: (_r, _e, id) => [{ type: 'Task', id }, 'Queue'],
    }),
    /** `POST /tasks/{id}/signals/{name}`; the task's events tell the rest (`signal_received`, `resumed`). */
    sendSignal: build.mutation<SignalSent, SignalArgs>({
      query: ({ taskId, name, payload }) => ({
        url: `/tasks/${encodeURIComponent(taskId)}/signals/${encodeURIComponent(name)}`,
        method: 'POST',
        // Serialized here: fetchBaseQuery sends only objects and arrays as JSON, and any value is a payload.
        body: JSON.stringify(payload),
        headers: { 'content-type': 'application/json' },
      }),
    }),
    retryTask: build.mutation<Task, string>({
      query: (id) => ({ url: `/tasks/${encodeURIComponent(id)}/retry`, method: 'POST' }),
      invalidatesTags: (_r, _e, id) => [{ type: 'Task', id }, { type: 'TaskLogs', id }, 'Queue'],
    }),
  }),
});

export const {
  useListTasksQuery,
  useGetTaskQuery,
  useGetTaskLogsQuery,
  useGetTaskStepsQuery,
  useGetTaskStreamQuery,
  useSubmitTaskMutation,
  useCancelTaskMutation,
  useRetryTaskMutation,
  useSendSignalMutation,
} = tasksApi;
