import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { makeStore } from '@/app/store';
import { SESSION_ENDED_MESSAGE } from '@/app/session';
import { renderWithStore } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import { LoginPage, SSO_ERRORS } from './LoginPage';

useMockServer();

type Options = { password_login: boolean; break_glass: boolean; oidc?: { name: string; login_url: string } };
const PASSWORD_ONLY: Options = { password_login: true, break_glass: false };
const WITH_SSO: Options = { password_login: true, break_glass: false, oidc: { name: 'Acme SSO', login_url: '/api/v1/auth/oidc/login' } };

function loginOptions(options: Options) {
  server.use(http.get('*/api/v1/auth/providers', () => HttpResponse.json(options)));
}

const signedOut = () => makeStore({ live: false, preloadedState: { session: { tokens: null, endedMessage: SESSION_ENDED_MESSAGE } } });

describe('LoginPage', () => {
  it('explains why the session ended, shows the server’s error, and signs in', async () => {
    loginOptions(PASSWORD_ONLY);
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
    loginOptions(PASSWORD_ONLY);
    server.use(http.post('*/api/v1/auth/login', () => HttpResponse.json({ access_token: 'a', refresh_token: 'r', expires_in: 900, token_type: 'Bearer' })));
    const user = userEvent.setup();
    const { router } = renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login?next=%2F%2Fevil.example' });
    await user.type(screen.getByLabelText('Email'), 'a@b.c');
    await user.type(screen.getByLabelText('Password'), 'password-123456{Enter}');
    await screen.findByText('elsewhere');
    expect(router.state.location.pathname).toBe('/');
  });

  it('offers single sign-on next to the password form, keeping where to go after', async () => {
    loginOptions(WITH_SSO);
    renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login?next=%2Fagents' });
    const link = await screen.findByRole('link', { name: 'Sign in with Acme SSO' });
    expect(link.getAttribute('href')).toMatch(/\/api\/v1\/auth\/oidc\/login\?next=%2Fagents$/);
    expect(screen.getByLabelText('Email')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Log in' })).toBeInTheDocument();
  });

  it('hides the password form when password login is off, but for the administrator link', async () => {
    loginOptions({ ...WITH_SSO, password_login: false, break_glass: true });
    const user = userEvent.setup();
    renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login' });
    await screen.findByRole('link', { name: 'Sign in with Acme SSO' });
    expect(screen.queryByLabelText('Email')).not.toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Administrator sign-in' }));
    expect(screen.getByLabelText('Email')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Administrator sign-in' })).not.toBeInTheDocument();
  });

  it('offers no password form and no administrator link without a break-glass account', async () => {
    loginOptions({ ...WITH_SSO, password_login: false, break_glass: false });
    renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login' });
    await screen.findByRole('link', { name: 'Sign in with Acme SSO' });
    expect(screen.queryByLabelText('Email')).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Administrator sign-in' })).not.toBeInTheDocument();
  });

  it('trades the one-time code from the callback for a session, once, and drops it from the address', async () => {
    loginOptions(WITH_SSO);
    const codes: string[] = [];
    server.use(
      http.post('*/api/v1/auth/oidc/exchange', async ({ request }) => {
        codes.push(((await request.json()) as { code: string }).code);
        return HttpResponse.json({ access_token: 'sso-acc', refresh_token: 'sso-ref', expires_in: 900, token_type: 'Bearer' });
      }),
    );
    const store = signedOut();
    const { router } = renderWithStore(<LoginPage />, { store, path: '/login', route: '/login?next=%2Ftasks#sso_code=one-time-code' });
    await screen.findByText('elsewhere');
    expect(router.state.location.pathname).toBe('/tasks');
    expect(router.state.location.hash).toBe('');
    expect(store.getState().session.tokens?.accessToken).toBe('sso-acc');
    expect(codes).toEqual(['one-time-code']);
  });

  it('shows why an expired or used code failed', async () => {
    loginOptions(WITH_SSO);
    server.use(
      http.post('*/api/v1/auth/oidc/exchange', () =>
        HttpResponse.json(errorBody('unauthorized', 'the sign-in code is invalid, expired or already used; sign in again'), { status: 401 }),
      ),
    );
    const { router } = renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login#sso_code=spent' });
    expect(await screen.findByRole('alert')).toHaveTextContent('already used');
    expect(router.state.location.hash).toBe('');
  });

  it('explains callback errors with their code', async () => {
    loginOptions(WITH_SSO);
    renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login?sso_error=no_role' });
    const alert = await screen.findByTestId('sso-error');
    expect(alert).toHaveTextContent(SSO_ERRORS.no_role!);
    expect(alert).toHaveTextContent('no_role');
  });

  it('still explains an error code it does not know', async () => {
    loginOptions(PASSWORD_ONLY);
    renderWithStore(<LoginPage />, { store: signedOut(), path: '/login', route: '/login?sso_error=new_kind' });
    expect(await screen.findByTestId('sso-error')).toHaveTextContent('Single sign-on failed. Please try again. (error: new_kind)');
  });
});
