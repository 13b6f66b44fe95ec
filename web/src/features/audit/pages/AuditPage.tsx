import { useId, useState, type FormEvent } from 'react';
import { usePermissions } from '@/features/auth/permissions';
import { isNotAvailable } from '@/shared/api/errors';
import type { AuditEntry, AuditOutcome } from '@/shared/api/types';
import { formatDateTime, localInputToIso } from '@/shared/lib/format';
import { EmptyState, ErrorAlert, Loading, NotAvailable, QueryError } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { useListAuditQuery, type AuditFilters } from '../auditApi';

const OUTCOME_CLASS: Record<AuditOutcome, string> = {
  success: 'badge status-succeeded',
  failure: 'badge status-failed',
  denied: 'badge status-dead',
};

function who(e: AuditEntry): string {
  return e.actor.api_key_name ? `${e.actor.name} (key ${e.actor.api_key_name})` : e.actor.name;
}

function EntryRow({ entry }: { entry: AuditEntry }) {
  return (
    <tr data-audit={entry.id}>
      <td>
        <time dateTime={entry.at}>{formatDateTime(entry.at)}</time>
      </td>
      <td>{who(entry)}</td>
      <td>
        <code>{entry.action}</code>
      </td>
      <td>{entry.target ? `${entry.target.kind} ${entry.target.id}` : '—'}</td>
      <td>
        <span className={OUTCOME_CLASS[entry.outcome]}>{entry.outcome}</span>
        {entry.reason && <div className="muted">{entry.reason}</div>}
      </td>
      <td>{entry.client_addr ?? '—'}</td>
      <td>{entry.request_id ? <code>{entry.request_id}</code> : '—'}</td>
      <td>{entry.detail ? <code>{JSON.stringify(entry.detail)}</code> : '—'}</td>
    </tr>
  );
}

/**
 * One page of entries, and the button that loads the next (older) one after it. Pages are
 * chained: each asks for the page after the cursor its predecessor returned.
 */
function EntryPage({ filters, cursor, onMore, last }: { filters: AuditFilters; cursor?: string; onMore: (next: string) => void; last: boolean }) {
  const { data, error, isFetching, refetch } = useListAuditQuery({ ...filters, cursor });
  if (error) {
    return (
      <tr>
        <td colSpan={8}>
          <ErrorAlert error={error} title="Could not load entries" onRetry={refetch} />
        </td>
      </tr>
    );
  }
  if (!data) {
    return (
      <tr>
        <td colSpan={8}>
          <Loading label="Loading entries…" />
        </td>
      </tr>
    );
  }
  return (
    <>
      {data.items.map((e) => (
        <EntryRow key={e.id} entry={e} />
      ))}
      {last && data.next_cursor && (
        <tr>
          <td colSpan={8}>
            <button type="button" className="btn btn-small" disabled={isFetching} onClick={() => data.next_cursor && onMore(data.next_cursor)}>
              Load more
            </button>
          </td>
        </tr>
      )}
    </>
  );
}

function FilterForm({ onApply }: { onApply: (filters: AuditFilters) => void }) {
  const id = useId();
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [target, setTarget] = useState('');
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply({ actor, action, target, since: localInputToIso(since), until: localInputToIso(until) });
  };
  const field = (name: string, label: string, value: string, set: (v: string) => void, hint: string, type = 'text') => (
    <div className="field">
      <label htmlFor={`${id}-${name}`}>{label}</label>
      <input id={`${id}-${name}`} type={type} value={value} onChange={(e) => set(e.target.value)} aria-describedby={`${id}-${name}-hint`} />
      <p className="hint" id={`${id}-${name}-hint`}>
        {hint}
      </p>
    </div>
  );
  return (
    <form className="card form" onSubmit={submit} aria-label="Filter the audit log">
      <div className="fields fields-row">
        {field('actor', 'Actor', actor, setActor, 'An email, a user or key id, system or cli.')}
        {field('action', 'Action', action, setAction, 'auth.login, or a family: auth.')}
        {field('target', 'Target', target, setTarget, 'A kind (agent) or one target (agent:translate).')}
        {field('since', 'Since', since, setSince, 'From this time on.', 'datetime-local')}
        {field('until', 'Until', until, setUntil, 'Before this time.', 'datetime-local')}
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary">
          Apply filters
        </button>
      </div>
    </form>
  );
}

function AuditTable({ filters }: { filters: AuditFilters }) {
  // The cursors of the pages loaded after the first; a new filter starts again (the parent
  // keys this component by its filters).
  const [cursors, setCursors] = useState<string[]>([]);
  const first = useListAuditQuery(filters);
  if (isNotAvailable(first.error)) return <NotAvailable what="The audit log" />;
  if (first.error) return <QueryError error={first.error} what="The audit log" onRetry={first.refetch} />;
  if (first.isLoading || !first.data) return <Loading label="Loading the audit log…" />;
  if (first.data.items.length === 0) return <EmptyState title="No entries match these filters." />;
  const pages = [undefined, ...cursors];
  return (
    <div className="table-wrap">
      <table className="table">
        <caption className="visually-hidden">Audit log, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Outcome</th>
            <th scope="col">Client</th>
            <th scope="col">Request</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {pages.map((cursor, i) => (
            <EntryPage key={cursor ?? 'first'} filters={filters} cursor={cursor} last={i === pages.length - 1} onMore={(next) => setCursors((c) => [...c, next])} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function AuditPage() {
  const can = usePermissions();
  const [filters, setFilters] = useState<AuditFilters>({});
  if (!can.canReadAudit) {
    return (
      <>
        <PageHeader title="Audit log" />
        <div className="alert alert-info">Only admins read the audit log.</div>
      </>
    );
  }
  return (
    <>
      <PageHeader title="Audit log" description="Who did what, to what, from where: sign-ins, changes to users, keys, agents, alerts and schedules, backups." />
      <FilterForm onApply={setFilters} />
      <AuditTable key={JSON.stringify(filters)} filters={filters} />
    </>
  );
}
