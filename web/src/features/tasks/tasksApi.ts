// Task endpoints. Lists and details are patched live by `liveCache.ts`.
import { api } from '@/app/api';
import type { Items, LogLine, SubmitBody, Task, TaskPage, TaskStatus } from '@/shared/api/types';

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

/** Live output that is not stored as task state: progress and partial output. */
export interface TaskStream {
  progress: number | null;
  progressMessage: string | null;
  partials: { seq: number; at: string; data: unknown }[];
}

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
    }),
    getTask: build.query<Task, string>({
      query: (id) => `/tasks/${encodeURIComponent(id)}`,
      providesTags: (_r, _e, id) => [{ type: 'Task', id }],
    }),
    getTaskLogs: build.query<Items<LogLine>, string>({
      query: (id) => `/tasks/${encodeURIComponent(id)}/logs`,
      providesTags: (_r, _e, id) => [{ type: 'TaskLogs', id }],
    }),
    /** Filled only by live events; starts empty when a task page opens. */
    getTaskStream: build.query<TaskStream, string>({
      queryFn: () => ({ data: { progress: null, progressMessage: null, partials: [] } }),
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
  useGetTaskStreamQuery,
  useSubmitTaskMutation,
  useCancelTaskMutation,
  useRetryTaskMutation,
} = tasksApi;
