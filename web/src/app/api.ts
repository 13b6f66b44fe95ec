// The one RTK Query API. Features add their endpoints with `api.injectEndpoints`.
// Requests carry the access token; a 401 (`token_expired` / `unauthorized`) refreshes the
// session once and retries; if the refresh is refused the session ends and the login page
// explains why.
import { createApi, fetchBaseQuery, type BaseQueryFn, type FetchArgs, type FetchBaseQueryError } from '@reduxjs/toolkit/query/react';
import { apiOrigin } from './config';
import { refreshSession } from './refresh';
import { selectTokens, type SessionState } from './session';

const rawBaseQuery = fetchBaseQuery({
  baseUrl: `${apiOrigin()}/api/v1`,
  prepareHeaders(headers, { getState }) {
    const tokens = selectTokens(getState() as { session: SessionState });
    if (tokens && !headers.has('authorization')) headers.set('authorization', `Bearer ${tokens.accessToken}`);
    return headers;
  },
});

const NO_REAUTH = new Set(['/auth/login', '/auth/refresh']);

function urlOf(args: string | FetchArgs): string {
  return typeof args === 'string' ? args : args.url;
}

export function isAuthFailure(error: FetchBaseQueryError | undefined): boolean {
  if (!error || error.status !== 401) return false;
  const data = error.data as { error?: { code?: string } } | undefined;
  const code = data?.error?.code;
  // Wrong password on login is not an expired session.
  return code === undefined || code === 'token_expired' || code === 'unauthorized';
}

export const baseQueryWithReauth: BaseQueryFn<string | FetchArgs, unknown, FetchBaseQueryError> = async (args, api, extra) => {
  const sentWith = selectTokens(api.getState() as { session: SessionState })?.accessToken ?? null;
  let result = await rawBaseQuery(args, api, extra);
  if (sentWith === null || NO_REAUTH.has(urlOf(args)) || !isAuthFailure(result.error)) return result;
  const outcome = await refreshSession(api, sentWith);
  if (outcome === 'refreshed') result = await rawBaseQuery(args, api, extra);
  return result;
};

export const api = createApi({
  reducerPath: 'api',
  baseQuery: baseQueryWithReauth,
  tagTypes: ['Me', 'Session', 'Task', 'TaskList', 'TaskLogs', 'TaskSteps', 'Agent', 'Worker', 'Queue', 'ApiKey', 'User', 'Metrics', 'Capabilities', 'AlertRule', 'AlertEvent', 'Schedule', 'File', 'TaskArtifacts'],
  refetchOnReconnect: true,
  endpoints: () => ({}),
});
