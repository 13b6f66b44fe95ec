// Who is signed in: the token pair (persisted for reloads and other tabs) and why a session
// ended. The user's profile is server data and lives in the RTK Query cache (`auth/me`).
import { createSlice, type PayloadAction } from '@reduxjs/toolkit';
import type { TokenPair } from '@/shared/api/types';

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds when the access token expires (per `expires_in`). */
  expiresAt: number;
}

export interface SessionState {
  tokens: Tokens | null;
  /** Shown on the login page after the session ended without the user asking. */
  endedMessage: string | null;
}

export const SESSION_ENDED_MESSAGE = 'Your session ended, please log in again';

const STORAGE_KEY = 'switchyard.session';

export function tokensFromPair(pair: TokenPair, now = Date.now()): Tokens {
  return {
    accessToken: pair.access_token,
    refreshToken: pair.refresh_token,
    expiresAt: now + pair.expires_in * 1000,
  };
}

export function loadStoredTokens(): Tokens | null {
  try {
    const raw = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (!raw) return null;
    const t = JSON.parse(raw) as Partial<Tokens>;
    if (typeof t.accessToken === 'string' && typeof t.refreshToken === 'string' && typeof t.expiresAt === 'number') {
      return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt };
    }
  } catch {
    // Unreadable storage: treat as signed out.
  }
  return null;
}

export function storeTokens(tokens: Tokens | null): void {
  try {
    if (tokens) globalThis.localStorage?.setItem(STORAGE_KEY, JSON.stringify(tokens));
    else globalThis.localStorage?.removeItem(STORAGE_KEY);
  } catch {
    // Private mode or full storage: the session still works in this tab.
  }
}

export function isStorageEventForSession(e: StorageEvent): boolean {
  return e.key === STORAGE_KEY || e.key === null;
}

const initialState: SessionState = { tokens: null, endedMessage: null };

export const sessionSlice = createSlice({
  name: 'session',
  initialState,
  reducers: {
    loggedIn(state, action: PayloadAction<Tokens>) {
      state.tokens = action.payload;
      state.endedMessage = null;
    },
    tokensRefreshed(state, action: PayloadAction<Tokens>) {
      state.tokens = action.payload;
    },
    /** Another tab changed the stored session. */
    tokensSynced(state, action: PayloadAction<Tokens | null>) {
      state.tokens = action.payload;
    },
    loggedOut(state) {
      state.tokens = null;
      state.endedMessage = null;
    },
    sessionEnded(state, action: PayloadAction<string | undefined>) {
      state.tokens = null;
      state.endedMessage = action.payload ?? SESSION_ENDED_MESSAGE;
    },
  },
});

export const { loggedIn, tokensRefreshed, tokensSynced, loggedOut, sessionEnded } = sessionSlice.actions;

export const selectTokens = (state: { session: SessionState }) => state.session.tokens;
export const selectIsSignedIn = (state: { session: SessionState }) => state.session.tokens !== null;
export const selectEndedMessage = (state: { session: SessionState }) => state.session.endedMessage;
