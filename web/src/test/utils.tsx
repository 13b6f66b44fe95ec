// Rendering pages and components the way the app does: a real store, a memory router.
import type { ReactElement } from 'react';
import { render } from '@testing-library/react';
import { Provider } from 'react-redux';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { makeStore, type AppStore } from '@/app/store';
import { tokensFromPair } from '@/app/session';
import type { Me, Role } from '@/shared/api/types';
import { authApi } from '@/features/auth/authApi';

export const USER_ID = '01900000-0000-7000-8000-000000000001';

export function signedInStore(role: Role = 'admin', userId = USER_ID): AppStore {
  const store = makeStore({
    live: false,
    preloadedState: {
      session: { tokens: tokensFromPair({ access_token: 'access-1', refresh_token: 'refresh-1', expires_in: 900, token_type: 'Bearer' }), endedMessage: null },
    },
  });
  const me: Me = {
    user: { id: userId, email: `${role}@example.com`, role, disabled: false, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' },
  };
  store.dispatch(authApi.util.upsertQueryEntries([{ endpointName: 'me', arg: undefined, value: me }]));
  return store;
}

export function renderWithStore(ui: ReactElement, { store = signedInStore(), path = '/', route = '/' }: { store?: AppStore; path?: string; route?: string } = {}) {
  const router = createMemoryRouter([{ path, element: ui }, { path: '*', element: <p>elsewhere</p> }], { initialEntries: [route] });
  const result = render(
    <Provider store={store}>
      <RouterProvider router={router} />
    </Provider>,
  );
  return { ...result, store, router };
}
