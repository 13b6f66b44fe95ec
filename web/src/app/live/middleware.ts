// The live middleware: connects while signed in, feeds task events into the store and lets
// features patch their cached RTK Query data with them.
import type { Middleware, MiddlewareAPI } from '@reduxjs/toolkit';
import type { TaskEvent } from '@/shared/api/events';
import type { AlertEvent } from '@/shared/api/types';
import { apiOrigin } from '../config';
import { refreshSession } from '../refresh';
import { selectTokens, type SessionState } from '../session';
import { LiveConnection, type ConnectionDeps } from './connection';
import { eventReceived, statusChanged, unwatchTask, watchTask } from './liveSlice';

export type LiveEventHandler = (event: TaskEvent, store: MiddlewareAPI) => void;
export type LiveAlertHandler = (event: AlertEvent, store: MiddlewareAPI) => void;

export interface LiveMiddlewareOptions {
  handlers: LiveEventHandler[];
  /** Alert events; the connection subscribes to them only when there are handlers. */
  alertHandlers?: LiveAlertHandler[];
  onResumed?: (store: MiddlewareAPI) => void;
  connection?: Partial<ConnectionDeps>;
}

/** Refresh this long before the access token expires, so a (re)connect never sends a dead one. */
const EXPIRY_MARGIN_MS = 30_000;

export function createLiveMiddleware(options: LiveMiddlewareOptions): Middleware {
  return (store) => {
    const tokensOf = () => selectTokens(store.getState() as { session: SessionState });
    const connection = new LiveConnection({
      origin: apiOrigin(),
      async getToken() {
        const tokens = tokensOf();
        if (!tokens) return null;
        if (tokens.expiresAt - Date.now() > EXPIRY_MARGIN_MS) return tokens.accessToken;
        const outcome = await refreshSession(store, tokens.accessToken);
        return outcome === 'ended' ? null : (tokensOf()?.accessToken ?? null);
      },
      async refresh(token) {
        return (await refreshSession(store, token)) === 'refreshed';
      },
      onEvent(event) {
        store.dispatch(eventReceived(event));
        for (const handle of options.handlers) handle(event, store);
      },
      onAlert: options.alertHandlers?.length
        ? (event) => {
            for (const handle of options.alertHandlers ?? []) handle(event, store);
          }
        : undefined,
      onStatus(status, transport, detail) {
        store.dispatch(statusChanged({ status, transport, detail }));
      },
      onResumed() {
        options.onResumed?.(store);
      },
      ...options.connection,
    });

    // A session restored from storage: connect once the store is fully set up.
    queueMicrotask(() => {
      if (tokensOf()) connection.start();
    });

    return (next) => (action) => {
      const before = tokensOf() !== null;
      const result = next(action);
      const after = tokensOf() !== null;
      if (!before && after) connection.start();
      else if (before && !after) connection.stop();
      if (watchTask.match(action)) connection.watchTask(action.payload.taskId, action.payload.since);
      else if (unwatchTask.match(action)) connection.unwatchTask(action.payload.taskId);
      return result;
    };
  };
}
