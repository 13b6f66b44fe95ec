// Filters for task lists, kept in the URL so a filtered view can be bookmarked and shared.
import { useEffect, useId, useState } from 'react';
import { useListAgentsQuery } from '@/features/agents/agentsApi';
import { TASK_STATUSES, type TaskStatus } from '@/shared/api/types';
import { isoToLocalInput, localInputToIso } from '@/shared/lib/format';
import { statusLabel } from '@/shared/ui/StatusBadge';

export interface TaskFilterValues {
  agent?: string;
  status: TaskStatus[];
  createdAfter?: string;
  createdBefore?: string;
  q?: string;
}

export function filtersFromParams(params: URLSearchParams): TaskFilterValues {
  const status = (params.get('status') ?? '')
    .split(',')
    .filter((s): s is TaskStatus => (TASK_STATUSES as readonly string[]).includes(s));
  return {
    agent: params.get('agent') || undefined,
    status,
    createdAfter: params.get('from') || undefined,
    createdBefore: params.get('to') || undefined,
    q: params.get('q') || undefined,
  };
}

export function paramsFromFilters(f: TaskFilterValues): URLSearchParams {
  const p = new URLSearchParams();
  if (f.agent) p.set('agent', f.agent);
  if (f.status.length) p.set('status', f.status.join(','));
  if (f.createdAfter) p.set('from', f.createdAfter);
  if (f.createdBefore) p.set('to', f.createdBefore);
  if (f.q) p.set('q', f.q);
  return p;
}

export function TaskFilters({
  value,
  onChange,
  searchAvailable,
  hideStatus,
}: {
  value: TaskFilterValues;
  onChange: (v: TaskFilterValues) => void;
  searchAvailable: boolean;
  hideStatus?: boolean;
}) {
  const id = useId();
  const agents = useListAgentsQuery();
  const [search, setSearch] = useState(value.q ?? '');
  useEffect(() => setSearch(value.q ?? ''), [value.q]);
  useEffect(() => {
    const t = setTimeout(() => {
      const q = search.trim() || undefined;
      if (q !== value.q) onChange({ ...value, q });
    }, 350);
    return () => clearTimeout(t);
  }, [search, value, onChange]);

  // The boxes answer a click at once; the URL (and so `value`) follows when the router's
  // navigation commits, which React may defer.
  const statusKey = value.status.join(',');
  const [status, setStatus] = useState<TaskStatus[]>(value.status);
  useEffect(() => setStatus(statusKey ? (statusKey.split(',') as TaskStatus[]) : []), [statusKey]);
  const toggleStatus = (s: TaskStatus) => {
    const next = status.includes(s) ? status.filter((x) => x !== s) : [...status, s];
    setStatus(next);
    onChange({ ...value, status: next });
  };

  const active = !!(value.agent || value.status.length || value.createdAfter || value.createdBefore || value.q);

  return (
    <form className="filters" role="search" aria-label="Filter tasks" onSubmit={(e) => e.preventDefault()}>
      <div className="field">
        <label htmlFor={`${id}-q`}>Search</label>
        <input
          id={`${id}-q`}
          type="search"
          placeholder={searchAvailable ? 'Input, output, errors, logs…' : 'Agent, id, status or error on this page'}
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          aria-describedby={`${id}-q-hint`}
        />
        <p className="hint" id={`${id}-q-hint`}>
          {searchAvailable ? 'Full-text search across all tasks.' : 'This server has no full-text search yet: this filters the tasks loaded below.'}
        </p>
      </div>
      <div className="field">
        <label htmlFor={`${id}-agent`}>Agent</label>
        <select id={`${id}-agent`} value={value.agent ?? ''} onChange={(e) => onChange({ ...value, agent: e.target.value || undefined })}>
          <option value="">All agents</option>
          {(agents.data?.items ?? []).map((a) => (
            <option key={a.name} value={a.name}>
              {a.name}
            </option>
          ))}
          {value.agent && !agents.data?.items.some((a) => a.name === value.agent) && <option value={value.agent}>{value.agent}</option>}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-from`}>Created after</label>
        <input id={`${id}-from`} type="datetime-local" value={isoToLocalInput(value.createdAfter)} onChange={(e) => onChange({ ...value, createdAfter: localInputToIso(e.target.value) })} />
      </div>
      <div className="field">
        <label htmlFor={`${id}-to`}>Created before</label>
        <input id={`${id}-to`} type="datetime-local" value={isoToLocalInput(value.createdBefore)} onChange={(e) => onChange({ ...value, createdBefore: localInputToIso(e.target.value) })} />
      </div>
      {!hideStatus && (
        <fieldset className="status-filter">
          <legend>Status</legend>
          {TASK_STATUSES.map((s) => (
            <label key={s} className={`chip${status.includes(s) ? ' chip-on' : ''}`}>
              <input type="checkbox" checked={status.includes(s)} onChange={() => toggleStatus(s)} />
              {statusLabel(s)}
            </label>
          ))}
        </fieldset>
      )}
      {active && (
        <button type="button" className="btn btn-small btn-link" onClick={() => onChange({ status: [] })}>
          Clear filters
        </button>
      )}
    </form>
  );
}
