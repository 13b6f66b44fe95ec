import { api } from '@/app/api';
import type { Items, QueueStats, WorkerInfo } from '@/shared/api/types';

export const workersApi = api.injectEndpoints({
  endpoints: (build) => ({
    listWorkers: build.query<Items<WorkerInfo>, void>({
      query: () => '/workers',
      providesTags: ['Worker'],
    }),
    listQueues: build.query<Items<QueueStats>, void>({
      query: () => '/queues',
      providesTags: ['Queue'],
    }),
  }),
});

export const { useListWorkersQuery, useListQueuesQuery } = workersApi;
