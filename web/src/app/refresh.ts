// Refreshing the access token. Refresh tokens rotate and reusing an old one revokes the whole
// session, so at most one refresh runs at a time: one promise per tab, and a Web Lock across
// tabs (the session is shared through localStorage).
import { apiUrl } from './config';
import { loadStoredTokens, selectTokens, sessionEnded, storeTokens, tokensFromPair, tokensRefreshed, type SessionState, type Tokens } from './session';
import type { Dispatch, UnknownAction } from '@reduxjs/toolkit';
import type { TokenPair } from '@/shared/api/types';

export type RefreshOutcome = 'refreshed' | 'ended' | 'unavailable';

interface StoreLike {
  dispatch: Dispatch<UnknownAction>;
  getState: () => unknown;
}

let inflight: Promise<RefreshOutcome> | null = null;

/**
 * Gets a fresh access token after `failedAccessToken` was rejected. If another request
 * already replaced that token, nothing is refreshed and the caller simply retries.
 */
export function refreshSession(store: StoreLike, failedAccessToken: string | null): Promise<RefreshOutcome> {
  const current = selectTokens(store.getState() as { session: SessionState });
  if (!current) return Promise.resolve('ended');
  if (failedAccessToken !== null && current.accessToken !== failedAccessToken) return Promise.resolve('refreshed');
  if (!inflight) {
    inflight = withCrossTabLock(() => refreshWith(store, current)).finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

async function withCrossTabLock<T>(f: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks?.request) return locks.request('switchyard-token-refresh', f) as Promise<T>;
  return f();
}

async function refreshWith(store: StoreLike, current: Tokens): Promise<RefreshOutcome> {
  // Another tab may have rotated the token while we waited for the lock: adopt its pair.
  const stored = loadStoredTokens();
  if (stored && stored.refreshToken !== current.refreshToken) {
    store.dispatch(tokensRefreshed(stored));
    return 'refreshed';
  }
  let response: Response;
  try {
    response = await fetch(apiUrl('/api/v1/auth/refresh'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: current.refreshToken }),
    });
  } catch {
    return 'unavailable';
  }
  if (response.ok) {
    try {
      const tokens = tokensFromPair((await response.json()) as TokenPair);
      storeTokens(tokens);
      store.dispatch(tokensRefreshed(tokens));
      return 'refreshed';
    } catch {
      return 'unavailable';
    }
  }
  if (response.status === 429 || response.status >= 500) return 'unavailable';
  storeTokens(null);
  store.dispatch(sessionEnded());
  return 'ended';
}

/** For tests: forget an in-flight refresh. */
export function resetRefreshState(): void {
  inflight = null;
}
