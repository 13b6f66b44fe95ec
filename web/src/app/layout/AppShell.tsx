// The signed-in frame: navigation, live status, the user menu, and the page.
import { useEffect, useState } from 'react';
import { Navigate, NavLink, Outlet, useLocation, useNavigation } from 'react-router';
import { useLogoutMutation, useMeQuery } from '@/features/auth/authApi';
import { permissionsFor } from '@/features/auth/permissions';
import { useAppSelector } from '../hooks';
import { selectIsSignedIn } from '../session';
import { LiveIndicator } from './LiveIndicator';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';

interface NavItem {
  to: string;
  label: string;
  end?: boolean;
  show?: boolean;
}

export function AppShell() {
  const signedIn = useAppSelector(selectIsSignedIn);
  const location = useLocation();
  const navigation = useNavigation();
  const me = useMeQuery(undefined, { skip: !signedIn });
  const [logout, logoutState] = useLogoutMutation();
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => setMenuOpen(false), [location.pathname]);

  if (!signedIn) {
    const next = location.pathname + location.search;
    return <Navigate to={next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`} replace />;
  }

  const user = me.data?.user;
  const can = permissionsFor(user?.role ?? null, user?.id ?? null);
  const nav: NavItem[] = [
    { to: '/', label: 'Overview', end: true },
    { to: '/tasks', label: 'Tasks', end: true },
    { to: '/tasks/new', label: 'Submit task', show: can.canSubmit },
    { to: '/dead-letters', label: 'Dead letters' },
    { to: '/agents', label: 'Agents' },
    { to: '/schedules', label: 'Schedules' },
    { to: '/reports', label: 'Reports' },
    { to: '/workers', label: 'Workers' },
    { to: '/alerts', label: 'Alerts' },
    { to: '/api-keys', label: 'API keys' },
    { to: '/users', label: 'Users', show: can.canManageUsers },
    { to: '/audit', label: 'Audit log', show: can.canReadAudit },
  ];

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <button
          type="button"
          className="btn btn-icon menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="sidenav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          <span aria-hidden="true">☰</span>
          <span className="visually-hidden">Menu</span>
        </button>
        <NavLink to="/" className="brand">
          <span className="brand-mark" aria-hidden="true" />
          Switchyard
        </NavLink>
        <div className="topbar-right">
          <LiveIndicator />
          {user && (
            <span className="user" data-testid="current-user">
              <span className="user-email">{user.email}</span>
              <span className={`role role-${user.role}`}>{user.role}</span>
            </span>
          )}
          <button type="button" className="btn btn-small" onClick={() => logout()} disabled={logoutState.isLoading}>
            Log out
          </button>
        </div>
      </header>
      {navigation.state === 'loading' && <div className="nav-progress" role="progressbar" aria-label="Loading page" />}
      <nav id="sidenav" className={`sidenav${menuOpen ? ' open' : ''}`} aria-label="Main">
        <ul>
          {nav
            .filter((n) => n.show !== false)
            .map((n) => (
              <li key={n.to}>
                <NavLink to={n.to} end={n.end}>
                  {n.label}
                </NavLink>
              </li>
            ))}
        </ul>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        {me.isLoading ? <Loading label="Loading your account…" /> : me.error && !me.data ? <ErrorAlert error={me.error} title="Could not load your account" onRetry={me.refetch} /> : <Outlet />}
      </main>
    </div>
  );
}
