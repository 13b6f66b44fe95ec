// The Redux store: the RTK Query cache (server data), the session, the live connection's
// state and the features' UI-only slices.
import { combineReducers, configureStore, createListenerMiddleware, type Middleware } from '@reduxjs/toolkit';
import { setupListeners } from '@reduxjs/toolkit/query';
import { api } from './api';
import { createLiveMiddleware, type LiveMiddlewareOptions } from './live/middleware';
import { liveSlice } from './live/liveSlice';
import { isStorageEventForSession, loadStoredTokens, loggedIn, loggedOut, sessionEnded, sessionSlice, storeTokens, tokensRefreshed, tokensSynced } from './session';
import { applyTaskEventToCache, refetchAfterReconnect } from '@/features/tasks/liveCache';
import { forgetRecentEvents } from '@/features/tasks/recentEvents';
import { tasksUiSlice } from '@/features/tasks/tasksUiSlice';
import { applyAlertEventToCache, refetchAlertsAfterReconnect } from '@/features/alerts/liveAlerts';

const rootReducer = combineReducers({
  [api.reducerPath]: api.reducer,
  session: sessionSlice.reducer,
  live: liveSlice.reducer,
  tasksUi: tasksUiSlice.reducer,
});

export type RootState = ReturnType<typeof rootReducer>;

export interface StoreOptions {
  preloadedState?: Partial<RootState>;
  live?: Partial<LiveMiddlewareOptions> | false;
}

export function makeStore(options: StoreOptions = {}) {
  const listener = createListenerMiddleware();
  listener.startListening({
    predicate: (action) => loggedIn.match(action) || tokensRefreshed.match(action),
    effect: (_action, { getState }) => storeTokens((getState() as RootState).session.tokens),
  });
  listener.startListening({
    predicate: (action) => loggedOut.match(action) || sessionEnded.match(action) || (tokensSynced.match(action) && action.payload === null),
    effect: (action, { dispatch }) => {
      if (!tokensSynced.match(action)) storeTokens(null);
      forgetRecentEvents();
      // Another person may sign in next: drop everything cached for this one.
      dispatch(api.util.resetApiState());
    },
  });

  const middleware: Middleware[] = [listener.middleware, api.middleware];
  if (options.live !== false) {
    middleware.push(
      createLiveMiddleware({
        handlers: [applyTaskEventToCache],
        alertHandlers: [applyAlertEventToCache],
        onResumed: (store) => {
          refetchAfterReconnect(store);
          refetchAlertsAfterReconnect(store);
        },
        ...options.live,
      }),
    );
  }

  const store = configureStore({
    reducer: rootReducer,
    preloadedState: options.preloadedState as RootState | undefined,
    middleware: (getDefault) => getDefault().concat(middleware),
  });
  setupListeners(store.dispatch);
  return store;
}

export type AppStore = ReturnType<typeof makeStore>;
export type AppDispatch = AppStore['dispatch'];

/** The store of the running app: the session restored from storage, synced across tabs. */
export function makeAppStore(): AppStore {
  const tokens = loadStoredTokens();
  const store = makeStore({ preloadedState: { session: { tokens, endedMessage: null } } });
  globalThis.addEventListener?.('storage', (e: StorageEvent) => {
    if (isStorageEventForSession(e)) store.dispatch(tokensSynced(loadStoredTokens()));
  });
  return store;
}
