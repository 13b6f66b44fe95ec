import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Navigate, useLocation, useNavigate, useSearchParams } from 'react-router';
import { useAppSelector } from '@/app/hooks';
import { apiUrl } from '@/app/config';
import { selectEndedMessage, selectIsSignedIn } from '@/app/session';
import { ErrorAlert } from '@/shared/ui/Feedback';
import { useExchangeSsoCodeMutation, useLoginMutation, useLoginOptionsQuery } from '../authApi';

function safeNext(next: string | null): string {
  // Only same-site paths: never send a person elsewhere after signing in.
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

/** What each `?sso_error=` code of the single sign-on callback means to the person. */
export const SSO_ERRORS: Record<string, string> = {
  state_mismatch: 'The sign-in could not be matched to this browser: it expired, was already used, or was started elsewhere. Please try again.',
  provider_error: 'The identity provider did not complete the sign-in (it may have been cancelled). Please try again.',
  provider_unreachable: 'The identity provider could not be reached. Please try again later.',
  invalid_token: 'The identity provider’s answer failed verification. Ask your administrator to check the server log.',
  no_role: 'Your account has no role in Switchyard. Ask your administrator for access.',
  account_disabled: 'Your Switchyard account is disabled.',
  email_conflict: 'A local Switchyard account already uses your email address. Ask your administrator to resolve it.',
  email_missing: 'The identity provider did not share a verified email address.',
  internal: 'Single sign-on failed because of a server error. Please try again.',
};

/** The one-time code the callback leaves in the fragment (`#sso_code=…`). */
function ssoCode(hash: string): string | null {
  const code = new URLSearchParams(hash.replace(/^#/, '')).get('sso_code');
  return code && code.length <= 256 ? code : null;
}

export function LoginPage() {
  const signedIn = useAppSelector(selectIsSignedIn);
  const ended = useAppSelector(selectEndedMessage);
  const [params] = useSearchParams();
  const location = useLocation();
  const navigate = useNavigate();
  const { data: options } = useLoginOptionsQuery();
  const [login, { isLoading, error }] = useLoginMutation();
  const [exchange, { isLoading: exchanging, error: exchangeError }] = useExchangeSsoCodeMutation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [adminForm, setAdminForm] = useState(false);
  const exchanged = useRef<string | null>(null);

  const next = safeNext(params.get('next'));
  const code = ssoCode(location.hash);
  useEffect(() => {
    // Once per code (effects may run twice): it works only once.
    if (!code || exchanged.current === code) return;
    exchanged.current = code;
    void exchange(code);
    // The code leaves the address bar and the history at once.
    void navigate({ pathname: location.pathname, search: location.search, hash: '' }, { replace: true });
  }, [code, exchange, navigate, location.pathname, location.search]);

  if (signedIn) return <Navigate to={next} replace />;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void login({ email: email.trim(), password });
  };

  const ssoError = params.get('sso_error');
  const passwordLogin = options?.password_login ?? true;
  const showForm = passwordLogin || adminForm;
  const oidc = options?.oidc;

  return (
    <main className="login">
      <form className="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div className="brand login-brand">
          <span className="brand-mark" aria-hidden="true" />
          Switchyard
        </div>
        <h1 id="login-title">Log in</h1>
        {ended && !error && !ssoError && (
          <div className="alert alert-info" role="status">
            {ended}
          </div>
        )}
        {ssoError && (
          <div className="alert alert-error" role="alert" data-testid="sso-error">
            {SSO_ERRORS[ssoError] ?? 'Single sign-on failed. Please try again.'} <span className="muted small">(error: {ssoError})</span>
          </div>
        )}
        <ErrorAlert error={exchangeError} title="Single sign-on" />
        <ErrorAlert error={error} />
        {(code || exchanging) && (
          <div className="alert alert-info" role="status">
            Signing you in…
          </div>
        )}
        {oidc && (
          <a className="btn btn-primary btn-block" href={`${apiUrl(oidc.login_url)}?next=${encodeURIComponent(next)}`}>
            Sign in with {oidc.name}
          </a>
        )}
        {oidc && showForm && <p className="login-divider muted small">or with your email and password</p>}
        {showForm && (
          <>
            <div className="field">
              <label htmlFor="login-email">Email</label>
              <input id="login-email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus={!oidc} />
            </div>
            <div className="field">
              <label htmlFor="login-password">Password</label>
              <input id="login-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
            </div>
            <button type="submit" className={oidc ? 'btn btn-block' : 'btn btn-primary btn-block'} disabled={isLoading}>
              {isLoading ? 'Logging in…' : 'Log in'}
            </button>
          </>
        )}
        {!passwordLogin && options?.break_glass && !adminForm && (
          <button type="button" className="btn btn-link btn-small" onClick={() => setAdminForm(true)}>
            Administrator sign-in
          </button>
        )}
      </form>
    </main>
  );
}
