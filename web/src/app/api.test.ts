import { http, HttpResponse } from 'msw';
import { describe, expect, it, beforeEach } from 'vitest';
import { makeStore } from './store';
import { SESSION_ENDED_MESSAGE, tokensFromPair } from './session';
import { resetRefreshState } from './refresh';
import { server, useMockServer, errorBody } from '@/test/msw';
import { tasksApi } from '@/features/tasks/tasksApi';
import { authApi } from '@/features/auth/authApi';

useMockServer();

function store() {
  return makeStore({
    live: false,
    preloadedState: {
      session: { tokens: tokensFromPair({ access_token: 'old-access', refresh_token: 'refresh-1', expires_in: 900, token_type: 'Bearer' }), endedMessage: null },
    },
  });
}

const page = { items: [], next_cursor: null };

describe('base query re-authentication', () => {
  beforeEach(() => resetRefreshState());

  it('refreshes once on token_expired and retries with the new token', async () => {
    const seen: string[] = [];
    let refreshes = 0;
    server.use(
      http.get('*/api/v1/tasks', ({ request }) => {
        const auth = request.headers.get('authorization') ?? '';
        seen.push(auth);
        return auth === 'Bearer new-access' ? HttpResponse.json(page) : HttpResponse.json(errorBody('token_expired', 'expired'), { status: 401 });
      }),
      http.post('*/api/v1/auth/refresh', async ({ request }) => {
        refreshes++;
        expect(await request.json()).toEqual({ refresh_token: 'refresh-1' });
        return HttpResponse.json({ access_token: 'new-access', refresh_token: 'refresh-2', expires_in: 900, token_type: 'Bearer' });
      }),
    );
    const s = store();
    const result = await s.dispatch(tasksApi.endpoints.listTasks.initiate({}));
    expect(result.data).toEqual(page);
    expect(refreshes).toBe(1);
    expect(seen).toEqual(['Bearer old-access', 'Bearer new-access']);
    expect(s.getState().session.tokens?.refreshToken).toBe('refresh-2');
    expect(JSON.parse(localStorage.getItem('switchyard.session')!).refreshToken).toBe('refresh-2');
  });

  it('refreshes only once for concurrent 401s (the old refresh token is never reused)', async () => {
    let refreshes = 0;
    server.use(
      http.get('*/api/v1/tasks', ({ request }) =>
        request.headers.get('authorization') === 'Bearer new-access' ? HttpResponse.json(page) : HttpResponse.json(errorBody('token_expired', 'expired'), { status: 401 }),
      ),
      http.post('*/api/v1/auth/refresh', async () => {
        refreshes++;
        await new Promise((r) => setTimeout(r, 20));
        return HttpResponse.json({ access_token: 'new-access', refresh_token: 'refresh-2', expires_in: 900, token_type: 'Bearer' });
      }),
    );
    const s = store();
    const [a, b, c] = await Promise.all([
      s.dispatch(tasksApi.endpoints.listTasks.initiate({})),
      s.dispatch(tasksApi.endpoints.listTasks.initiate({ agent: 'echo' })),
      s.dispatch(tasksApi.endpoints.listTasks.initiate({ agent: 'x' })),
    ]);
    expect(a.data).toEqual(page);
    expect(b.data).toEqual(page);
    expect(c.data).toEqual(page);
    expect(refreshes).toBe(1);
  });

  it('ends the session with a message when the refresh is refused', async () => {
    server.use(
      http.get('*/api/v1/tasks', () => HttpResponse.json(errorBody('token_expired', 'expired'), { status: 401 })),
      http.post('*/api/v1/auth/refresh', () => HttpResponse.json(errorBody('unauthorized', 'session revoked'), { status: 401 })),
    );
    const s = store();
    await s.dispatch(tasksApi.endpoints.listTasks.initiate({}));
    expect(s.getState().session.tokens).toBeNull();
    expect(s.getState().session.endedMessage).toBe(SESSION_ENDED_MESSAGE);
    expect(localStorage.getItem('switchyard.session')).toBeNull();
  });

  it('keeps the session when the server cannot be reached for the refresh', async () => {
    server.use(
      http.get('*/api/v1/tasks', () => HttpResponse.json(errorBody('token_expired', 'expired'), { status: 401 })),
      http.post('*/api/v1/auth/refresh', () => HttpResponse.error()),
    );
    const s = store();
    await s.dispatch(tasksApi.endpoints.listTasks.initiate({}));
    expect(s.getState().session.tokens?.refreshToken).toBe('refresh-1');
  });

  it('does not refresh when a login is refused', async () => {
    let refreshes = 0;
    server.use(
      http.post('*/api/v1/auth/login', () => HttpResponse.json(errorBody('invalid_credentials', 'wrong email or password'), { status: 401 })),
      http.post('*/api/v1/auth/refresh', () => {
        refreshes++;
        return HttpResponse.json({});
      }),
    );
    const s = store();
    const result = await s.dispatch(authApi.endpoints.login.initiate({ email: 'a@b.c', password: 'nope' }));
    expect('error' in result && result.error).toMatchObject({ status: 401 });
    expect(refreshes).toBe(0);
  });

  it('adopts a token pair another tab already rotated instead of reusing the old refresh token', async () => {
    let refreshes = 0;
    server.use(
      http.get('*/api/v1/tasks', ({ request }) =>
        request.headers.get('authorization') === 'Bearer tab2-access' ? HttpResponse.json(page) : HttpResponse.json(errorBody('token_expired', 'expired'), { status: 401 }),
      ),
      http.post('*/api/v1/auth/refresh', () => {
        refreshes++;
        return HttpResponse.json(errorBody('unauthorized', 'reused'), { status: 401 });
      }),
    );
    const s = store();
    localStorage.setItem('switchyard.session', JSON.stringify({ accessToken: 'tab2-access', refreshToken: 'refresh-tab2', expiresAt: Date.now() + 900_000 }));
    const result = await s.dispatch(tasksApi.endpoints.listTasks.initiate({}));
    expect(result.data).toEqual(page);
    expect(refreshes).toBe(0);
    expect(s.getState().session.tokens?.refreshToken).toBe('refresh-tab2');
  });
});
