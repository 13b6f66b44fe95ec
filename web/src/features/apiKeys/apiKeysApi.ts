import { api } from '@/app/api';
import type { ApiKey, CreateKeyBody, CreatedKey, Items } from '@/shared/api/types';

export const apiKeysApi = api.injectEndpoints({
  endpoints: (build) => ({
    listApiKeys: build.query<Items<ApiKey>, void>({
      query: () => '/api-keys',
      providesTags: ['ApiKey'],
    }),
    createApiKey: build.mutation<CreatedKey, CreateKeyBody>({
      query: (body) => ({ url: '/api-keys', method: 'POST', body }),
      invalidatesTags: ['ApiKey'],
    }),
    revokeApiKey: build.mutation<void, string>({
      query: (id) => ({ url: `/api-keys/${encodeURIComponent(id)}`, method: 'DELETE' }),
      invalidatesTags: ['ApiKey'],
    }),
  }),
});

export const { useListApiKeysQuery, useCreateApiKeyMutation, useRevokeApiKeyMutation } = apiKeysApi;
