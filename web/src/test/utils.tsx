// Rendering pages and components the way the app does: a real store, a memory router.
import type { ReactElement } from 'react';
import { render } from '@testing-library/react';
import { Provider } from 'react-redux';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { makeStore, type AppStore, type StoreOptions } from '@/app/store';
import { tokensFromPair } from '@/app/session';
import type { Transport, TransportOptions } from '@/app/live/transports';
import type { TaskEvent } from '@/shared/api/events';
import type { Me, Role } from '@/shared/api/types';
import { authApi } from '@/features/auth/authApi';

export const USER_ID = '01900000-0000-7000-8000-000000000001';

/** A task event as tests write it: the envelope (`type`, `agent`, `at`) is filled in. */
export type TestEvent = TaskEvent extends infer E ? (E extends TaskEvent ? Omit<E, 'type' | 'agent' | 'at'> & { agent?: string; at?: string } : never) : never;

/**
 * A signed-in store whose live connection is a fake WebSocket: `emit` delivers a task event as
 * the server would (through the live middleware into the cache); `watched` lists the task
 * subscriptions asked of it (task id and `since`).
 */
export function liveStore(
  role: Role = 'admin',
  userId = USER_ID,
): { store: AppStore; emit: (event: TestEvent) => void; watched: [string, number | undefined][] } {
  const opened: TransportOptions[] = [];
  const watched: [string, number | undefined][] = [];
  const store = signedInStore(role, userId, {
    connection: {
      openWebSocket: (_url: string, opts: TransportOptions): Transport => {
        opened.push(opts);
        watched.push(...opts.watched);
        return { kind: 'websocket', watchTask: (taskId, since) => void watched.push([taskId, since]), unwatchTask: () => {}, close: () => {} };
      },
    },
  });
  const emit = (e: TestEvent) => {
    const connection = opened.at(-1);
    if (!connection) throw new Error('the live connection has not opened yet');
    connection.callbacks.onEvent({ type: 'event', agent: 'test', at: new Date().toISOString(), ...e } as TaskEvent);
  };
  return { store, emit, watched };
}

export function signedInStore(role: Role = 'admin', userId = USER_ID, live: StoreOptions['live'] = false): AppStore {
  const store = makeStore({
    live,
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
