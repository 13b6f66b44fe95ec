import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { makeStore } from '@/app/store';
import { SESSION_ENDED_MESSAGE } from '@/app/session';
import { renderWithStore } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import { LoginPage } from './LoginPage';

useMockServer();

const signedOut = () => makeStore({ live: false, preloadedState: { session: { tokens: null, endedMessage: SESSION_ENDED_MESSAGE } } });

describe('LoginPage', () => {
  it('explains why the session ended, shows the server’s error, and signs in', async () => {
    const user = userEvent.setup();
    let attempts = 0;
    server.use(
      http.post('*/api/v1/auth/login', async ({ request }) => {
        attempts++;
        const body = (await request.json()) as { password: string };
        if (body.password !== 'correct horse battery') return HttpResponse.json(errorBody('invalid_credentials', 'wrong email or password'), { status: 401 });
        return HttpResponse.json({ access_token: 'acc', refresh_token: 'ref', expires_in: 900, token_type: 'Bearer' });
      }),
    );
    const store = signedOut();
    const { router } = renderWithStore(<LoginPage />, { store, path: '/login', route: '/login?next=%2Ftasks' });
    expect(screen.getByRole('status')).toHaveTextContent(SESSION_ENDED_MESSAGE);
    await user.type(screen.getByLabelText('Email'), 'admin@localhost');
    await user.type(screen.getByLabelText('Password'), 'nope');
    await user.click(screen.getByRole('button', { name: 'Log in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('wrong email or password');
    await user.clear(screen.getByLabelText('Password'));
    await user.type(screen.getByLabelText('Password'), 'correct horse battery{Enter}');
    await screen.findByText('elsewhere');
    expect(router.state.location.pathname).toBe('/tasks');
    expect(store.getState().session.tokens?.accessToken).toBe('acc');
    expect(attempts).toBe(2);
  });

  it('never redirects off-site after login', async () => {
    server.use(http.post('*/api/v1/auth/login', () => HttpResponse.json({ access_token: 'a', refresh_token: 'r', expires_in: 900, token_type: 'Bearer' })));
    const user = userEvent.setup();
    const { router } = renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login?next=%2F%2Fevil.example' });
    await user.type(screen.getByLabelText('Email'), 'a@b.c');
    await user.type(screen.getByLabelText('Password'), 'password-123456{Enter}');
    await screen.findByText('elsewhere');
    expect(router.state.location.pathname).toBe('/');
  });
});
