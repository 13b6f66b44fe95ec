// Schedules: cron-driven task submissions (reading: every role that reads agents; writing,
// pausing and running now: those that manage agents), and the preview of a cron's next runs.
import { api } from '@/app/api';
import type { Items, Schedule, SchedulePreview, ScheduleSpec, ScheduleTriggered } from '@/shared/api/types';

export interface UpdateScheduleArgs {
  name: string;
  spec: ScheduleSpec;
}

export interface PreviewArgs {
  cron: string;
  timezone: string;
}

/** Pages showing schedules read them again this often, for their next and last runs. */
export const SCHEDULES_POLL_MS = 5_000;

const path = (name: string) => `/schedules/${encodeURIComponent(name)}`;

export const schedulesApi = api.injectEndpoints({
  endpoints: (build) => ({
    listSchedules: build.query<Items<Schedule>, void>({
      query: () => '/schedules',
      providesTags: (r) => [{ type: 'Schedule', id: 'LIST' }, ...(r?.items ?? []).map((s) => ({ type: 'Schedule' as const, id: s.name }))],
    }),
    getSchedule: build.query<Schedule, string>({
      query: (name) => path(name),
      providesTags: (_r, _e, name) => [{ type: 'Schedule', id: name }],
    }),
    createSchedule: build.mutation<Schedule, ScheduleSpec>({
      query: (body) => ({ url: '/schedules', method: 'POST', body }),
      invalidatesTags: [{ type: 'Schedule', id: 'LIST' }],
    }),
    updateSchedule: build.mutation<Schedule, UpdateScheduleArgs>({
      query: ({ name, spec }) => ({ url: path(name), method: 'PUT', body: spec }),
      invalidatesTags: (_r, _e, { name }) => [{ type: 'Schedule', id: name }, { type: 'Schedule', id: 'LIST' }],
    }),
    deleteSchedule: build.mutation<void, string>({
      query: (name) => ({ url: path(name), method: 'DELETE' }),
      invalidatesTags: [{ type: 'Schedule', id: 'LIST' }],
    }),
    /** Run now: one task, as if the schedule had fired. */
    triggerSchedule: build.mutation<ScheduleTriggered, string>({
      query: (name) => ({ url: `${path(name)}/trigger`, method: 'POST' }),
      invalidatesTags: (_r, _e, name) => [{ type: 'Schedule', id: name }, { type: 'Schedule', id: 'LIST' }, 'TaskList'],
    }),
    /** The next fire times of a cron expression, for the form's helper while typing. */
    previewSchedule: build.query<SchedulePreview, PreviewArgs>({
      query: ({ cron, timezone }) => ({ url: '/schedules/preview', params: { cron, timezone } }),
      keepUnusedDataFor: 30,
    }),
  }),
});

export const {
  useListSchedulesQuery,
  useGetScheduleQuery,
  useCreateScheduleMutation,
  useUpdateScheduleMutation,
  useDeleteScheduleMutation,
  useTriggerScheduleMutation,
  usePreviewScheduleQuery,
} = schedulesApi;
