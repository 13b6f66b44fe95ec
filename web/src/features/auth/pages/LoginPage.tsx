import { useState, type FormEvent } from 'react';
import { Navigate, useSearchParams } from 'react-router';
import { useAppSelector } from '@/app/hooks';
import { selectEndedMessage, selectIsSignedIn } from '@/app/session';
import { ErrorAlert } from '@/shared/ui/Feedback';
import { useLoginMutation } from '../authApi';

function safeNext(next: string | null): string {
  // Only same-site paths: never send a person elsewhere after signing in.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function LoginPage() {
  const signedIn = useAppSelector(selectIsSignedIn);
  const ended = useAppSelector(selectEndedMessage);
  const [params] = useSearchParams();
  const [login, { isLoading, error }] = useLoginMutation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');

  if (signedIn) return <Navigate to={safeNext(params.get('next'))} replace />;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void login({ email: email.trim(), password });
  };

  return (
    <main className="login">
      <form className="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div className="brand login-brand">
          <span className="brand-mark" aria-hidden="true" />
          Switchyard
        </div>
        <h1 id="login-title">Log in</h1>
        {ended && !error && (
          <div className="alert alert-info" role="status">
            {ended}
          </div>
        )}
        <ErrorAlert error={error} />
        <div className="field">
          <label htmlFor="login-email">Email</label>
          <input id="login-email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        </div>
        <div className="field">
          <label htmlFor="login-password">Password</label>
          <input id="login-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </div>
        <button type="submit" className="btn btn-primary btn-block" disabled={isLoading}>
          {isLoading ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
