import { api } from '@/app/api';
import { loggedIn, loggedOut, tokensFromPair } from '@/app/session';
import type { Items, LoginOptions, Me, SessionView, TokenPair } from '@/shared/api/types';

export interface Credentials {
  email: string;
  password: string;
}

export const authApi = api.injectEndpoints({
  endpoints: (build) => ({
    login: build.mutation<TokenPair, Credentials>({
      query: (body) => ({ url: '/auth/login', method: 'POST', body }),
      async onQueryStarted(_args, { dispatch, queryFulfilled }) {
        try {
          const { data } = await queryFulfilled;
          dispatch(loggedIn(tokensFromPair(data)));
        } catch {
          // The page shows the error.
        }
      },
    }),
    /** How to sign in here: password login on or off, single sign-on's name. Public. */
    loginOptions: build.query<LoginOptions, void>({
      query: () => '/auth/providers',
    }),
    /** Trades the one-time code of a finished single sign-on for the usual token pair. */
    exchangeSsoCode: build.mutation<TokenPair, string>({
      query: (code) => ({ url: '/auth/oidc/exchange', method: 'POST', body: { code } }),
      async onQueryStarted(_args, { dispatch, queryFulfilled }) {
        try {
          const { data } = await queryFulfilled;
          dispatch(loggedIn(tokensFromPair(data)));
        } catch {
          // The page shows the error.
        }
      },
    }),
    logout: build.mutation<void, void>({
      query: () => ({ url: '/auth/logout', method: 'POST' }),
      async onQueryStarted(_args, { dispatch, queryFulfilled }) {
        // Sign out locally whatever the server says: the user asked to leave.
        await queryFulfilled.catch(() => undefined);
        dispatch(loggedOut());
      },
    }),
    me: build.query<Me, void>({
      query: () => '/auth/me',
      providesTags: ['Me'],
    }),
    listSessions: build.query<Items<SessionView>, void>({
      query: () => '/auth/sessions',
      providesTags: ['Session'],
    }),
    endSession: build.mutation<void, string>({
      query: (id) => ({ url: `/auth/sessions/${encodeURIComponent(id)}`, method: 'DELETE' }),
      invalidatesTags: ['Session'],
    }),
  }),
});

export const {
  useLoginMutation,
  useLoginOptionsQuery,
  useExchangeSsoCodeMutation,
  useLogoutMutation,
  useMeQuery,
  useListSessionsQuery,
  useEndSessionMutation,
} = authApi;
