import { useId, useState, type FormEvent } from 'react';
import { usePermissions } from '@/features/auth/permissions';
import { isNotAvailable } from '@/shared/api/errors';
import { ROLES, type Role, type User } from '@/shared/api/types';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { Modal } from '@/shared/ui/Modal';
import { EmptyState, ErrorAlert, Loading, NotAvailable, QueryError } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { useCreateUserMutation, useListUsersQuery, useUpdateUserMutation } from '../usersApi';

const ROLE_HELP: Record<Role, string> = {
  viewer: 'reads tasks, agents and workers',
  operator: 'also submits, cancels and retries own tasks',
  admin: 'everything, including agents, users and keys',
};

function CreateUserForm() {
  const id = useId();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('operator');
  const [create, state] = useCreateUserMutation();
  const [done, setDone] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    try {
      const user = await create({ email: email.trim(), password, role }).unwrap();
      setDone(user.email);
      setEmail('');
      setPassword('');
    } catch {
      // Shown below.
    }
  };
  if (isNotAvailable(state.error)) return <NotAvailable what="Creating users" />;
  return (
    <form className="card form" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Add a user</h2>
      <div className="fields fields-row">
        <div className="field">
          <label htmlFor={`${id}-email`}>Email</label>
          <input id={`${id}-email`} type="email" autoComplete="off" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-password`}>Password</label>
          <input
            id={`${id}-password`}
            type="password"
            autoComplete="new-password"
            required
            minLength={12}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-describedby={`${id}-password-hint`}
          />
          <p className="hint" id={`${id}-password-hint`}>
            At least 12 characters.
          </p>
        </div>
        <div className="field">
          <label htmlFor={`${id}-role`}>Role</label>
          <select id={`${id}-role`} value={role} onChange={(e) => setRole(e.target.value as Role)} aria-describedby={`${id}-role-hint`}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <p className="hint" id={`${id}-role-hint`}>
            {ROLE_HELP[role]}
          </p>
        </div>
      </div>
      <ErrorAlert error={state.error} title="Not added" />
      {done && (
        <div className="alert alert-success" role="status">
          Added {done}.
        </div>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={state.isLoading}>
          {state.isLoading ? 'Adding…' : 'Add user'}
        </button>
      </div>
    </form>
  );
}

function ResetPassword({ user }: { user: User }) {
  const id = useId();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState('');
  const [done, setDone] = useState(false);
  const [update, state] = useUpdateUserMutation();
  const close = () => {
    setOpen(false);
    setPassword('');
    state.reset();
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await update({ id: user.id, password }).unwrap();
      setDone(true);
      close();
    } catch {
      // Shown in the dialog.
    }
  };
  return (
    <>
      <button type="button" className="btn btn-small" onClick={() => setOpen(true)} aria-label={`Reset the password of ${user.email}`}>
        {done ? 'Password reset' : 'Reset password'}
      </button>
      {open && (
        <Modal title={`New password for ${user.email}`} onClose={close}>
          <form onSubmit={submit} className="form">
            <p className="muted">They are signed out everywhere and sign in again with this password.</p>
            <div className="field">
              <label htmlFor={`${id}-pw`}>New password</label>
              <input
                id={`${id}-pw`}
                type="password"
                autoComplete="new-password"
                minLength={12}
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                aria-describedby={`${id}-pw-hint`}
              />
              <p className="hint" id={`${id}-pw-hint`}>
                At least 12 characters, not a common password.
              </p>
            </div>
            <ErrorAlert error={state.error} title="Not changed" />
            <div className="modal-actions">
              <button type="button" className="btn" onClick={close}>
                Keep the old one
              </button>
              <button type="submit" className="btn btn-primary" disabled={state.isLoading || password.length === 0}>
                {state.isLoading ? 'Saving…' : 'Set password'}
              </button>
            </div>
          </form>
        </Modal>
      )}
    </>
  );
}

function UserRow({ user, self }: { user: User; self: boolean }) {
  const [update, state] = useUpdateUserMutation();
  return (
    <tr data-user={user.email}>
      <td>
        {user.email}
        {self && <span className="tag">you</span>}
      </td>
      <td>
        <label className="visually-hidden" htmlFor={`role-${user.id}`}>
          Role of {user.email}
        </label>
        <select id={`role-${user.id}`} value={user.role} disabled={self || state.isLoading} onChange={(e) => update({ id: user.id, role: e.target.value as Role })}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        {state.error && <ErrorAlert error={state.error} />}
      </td>
      <td>{user.disabled ? <span className="badge status-cancelled">Disabled</span> : <span className="badge status-succeeded">Active</span>}</td>
      <td>
        <RelativeTime iso={user.created_at} />
      </td>
      <td className="row-actions">
        <ResetPassword user={user} />
        {!self &&
          (user.disabled ? (
            <button type="button" className="btn btn-small" onClick={() => update({ id: user.id, disabled: false })} disabled={state.isLoading}>
              Enable
            </button>
          ) : (
            <ConfirmButton
              className="btn btn-small btn-danger"
              label="Disable"
              aria-label={`Disable ${user.email}`}
              title={`Disable ${user.email}?`}
              message="They are signed out everywhere and cannot log in until enabled again. Their API keys stop working."
              confirmLabel="Disable user"
              danger
              onConfirm={() => update({ id: user.id, disabled: true }).unwrap()}
            />
          ))}
      </td>
    </tr>
  );
}

export function UsersPage() {
  const can = usePermissions();
  const { data, error, isLoading, refetch } = useListUsersQuery(undefined, { skip: !can.canManageUsers });
  if (!can.canManageUsers) {
    return (
      <>
        <PageHeader title="Users" />
        <div className="alert alert-info">Only admins manage users.</div>
      </>
    );
  }
  const unavailable = isNotAvailable(error);
  return (
    <>
      <PageHeader title="Users" description="Who can sign in, and what their role lets them do." />
      {unavailable ? (
        <NotAvailable what="User administration" />
      ) : (
        <>
          <CreateUserForm />
          {error ? (
            <QueryError error={error} what="Users" onRetry={refetch} />
          ) : isLoading ? (
            <Loading label="Loading users…" />
          ) : !data || data.items.length === 0 ? (
            <EmptyState title="No users." />
          ) : (
            <div className="table-wrap">
              <table className="table">
                <caption className="visually-hidden">Users</caption>
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col">State</th>
                    <th scope="col">Added</th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((u) => (
                    <UserRow key={u.id} user={u} self={u.id === can.userId} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </>
  );
}
