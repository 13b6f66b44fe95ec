// What the connected server offers, read from its OpenAPI document, so the UI can tell a
// person "not available on this server" instead of failing (and never silently ignores a
// parameter the server does not know, like full-text search).
import { api } from './api';
import { apiUrl } from './config';

export interface Capabilities {
  taskSearch: boolean;
  users: boolean;
  metrics: boolean;
  webSocket: boolean;
}

interface OpenApiDoc {
  paths?: Record<string, Record<string, { parameters?: { name?: string; in?: string }[] }>>;
}

export function capabilitiesFrom(doc: OpenApiDoc): Capabilities {
  const paths = doc.paths ?? {};
  const taskParams = paths['/api/v1/tasks']?.get?.parameters ?? [];
  return {
    taskSearch: taskParams.some((p) => p.name === 'q'),
    users: '/api/v1/users' in paths,
    metrics: Object.keys(paths).some((p) => p.startsWith('/api/v1/metrics')),
    webSocket: '/api/v1/ws' in paths,
  };
}

export const capabilitiesApi = api.injectEndpoints({
  endpoints: (build) => ({
    getCapabilities: build.query<Capabilities, void>({
      query: () => apiUrl('/api/openapi.json'),
      transformResponse: (doc: OpenApiDoc) => capabilitiesFrom(doc),
      keepUnusedDataFor: 600,
      providesTags: ['Capabilities'],
    }),
  }),
});

export const { useGetCapabilitiesQuery } = capabilitiesApi;
