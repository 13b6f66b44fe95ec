import { useId, useState, type FormEvent } from 'react';
import { usePermissions } from '@/features/auth/permissions';
import { SCOPES, type CreatedKey, type Scope } from '@/shared/api/types';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { localInputToIso } from '@/shared/lib/format';
import { useCreateApiKeyMutation, useListApiKeysQuery, useRevokeApiKeyMutation } from '../apiKeysApi';
import { NewKeySecret } from '../components/NewKeySecret';
import { SessionsList } from '@/features/auth/components/SessionsList';

const SCOPE_HELP: Record<Scope, string> = {
  read: 'read tasks, agents, workers',
  submit: 'submit, cancel and retry tasks',
  worker: 'connect as a remote worker',
  admin: 'everything an admin can do',
};

function CreateKeyForm({ onCreated }: { onCreated: (k: CreatedKey) => void }) {
  const id = useId();
  const can = usePermissions();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['read']);
  const [expires, setExpires] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [create, state] = useCreateApiKeyMutation();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!name.trim()) return setProblem('Give the key a name, so you can recognise it later.');
    if (scopes.length === 0) return setProblem('Choose at least one scope.');
    setProblem(null);
    try {
      const created = await create({ name: name.trim(), scopes, expires_at: localInputToIso(expires) ?? null }).unwrap();
      onCreated(created);
      setName('');
      setExpires('');
    } catch {
      // Shown below.
    }
  };
  return (
    <form className="card form" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Create a key</h2>
      <div className="fields fields-row">
        <div className="field">
          <label htmlFor={`${id}-name`}>Name</label>
          <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} maxLength={100} required placeholder="e.g. CI pipeline" />
        </div>
        <div className="field">
          <label htmlFor={`${id}-expires`}>Expires</label>
          <input id={`${id}-expires`} type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} aria-describedby={`${id}-expires-hint`} />
          <p className="hint" id={`${id}-expires-hint`}>
            Empty: never.
          </p>
        </div>
      </div>
      <fieldset className="fieldset">
        <legend>Scopes</legend>
        {SCOPES.map((s) => {
          const disabled = s === 'admin' && can.role !== 'admin';
          return (
            <label key={s} className="check">
              <input
                type="checkbox"
                checked={scopes.includes(s)}
                disabled={disabled}
                onChange={() => setScopes((cur) => (cur.includes(s) ? cur.filter((x) => x !== s) : [...cur, s]))}
              />
              <strong>{s}</strong> <span className="muted">— {SCOPE_HELP[s]}</span>
              {disabled && <span className="muted small"> (admins only)</span>}
            </label>
          );
        })}
      </fieldset>
      {problem && (
        <p className="field-errors" role="alert">
          {problem}
        </p>
      )}
      <ErrorAlert error={state.error} title="No key created" />
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={state.isLoading}>
          {state.isLoading ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}

export function ApiKeysPage() {
  const { data, error, isLoading, refetch } = useListApiKeysQuery();
  const [revoke] = useRevokeApiKeyMutation();
  const [created, setCreated] = useState<CreatedKey | null>(null);
  return (
    <>
      <PageHeader title="API keys and sessions" description="Keys let programs and workers use Switchyard as you, limited to their scopes." />
      {created ? <NewKeySecret created={created} onDone={() => setCreated(null)} /> : <CreateKeyForm onCreated={setCreated} />}
      <section aria-labelledby="keys-title">
        <h2 id="keys-title">Your keys</h2>
        {error ? (
          <ErrorAlert error={error} title="Could not load keys" onRetry={refetch} />
        ) : isLoading ? (
          <Loading label="Loading keys…" />
        ) : !data || data.items.length === 0 ? (
          <EmptyState title="You have no API keys." />
        ) : (
          <div className="table-wrap">
            <table className="table">
              <caption className="visually-hidden">API keys</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Key</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((k) => {
                  const expired = !!k.expires_at && Date.parse(k.expires_at) < Date.now();
                  return (
                    <tr key={k.id} data-key={k.name} className={k.revoked_at ? 'row-muted' : undefined}>
                      <td>{k.name}</td>
                      <td className="mono">{k.prefix}…</td>
                      <td>
                        {k.scopes.map((s) => (
                          <span key={s} className="tag">
                            {s}
                          </span>
                        ))}
                      </td>
                      <td>
                        <RelativeTime iso={k.created_at} />
                      </td>
                      <td>{k.last_used_at ? <RelativeTime iso={k.last_used_at} /> : <span className="muted">never</span>}</td>
                      <td>{k.expires_at ? <RelativeTime iso={k.expires_at} /> : <span className="muted">never</span>}</td>
                      <td className="row-actions">
                        {k.revoked_at ? (
                          <span className="badge status-cancelled">Revoked</span>
                        ) : expired ? (
                          <span className="badge status-cancelled">Expired</span>
                        ) : (
                          <ConfirmButton
                            className="btn btn-small btn-danger"
                            label="Revoke"
                            aria-label={`Revoke ${k.name}`}
                            title={`Revoke “${k.name}”?`}
                            message="Programs using this key stop working at once. This cannot be undone."
                            confirmLabel="Revoke key"
                            danger
                            onConfirm={() => revoke(k.id).unwrap()}
                          />
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <SessionsList />
    </>
  );
}
