import { Link } from 'react-router';
import { usePermissions } from '@/features/auth/permissions';
import { formatDuration } from '@/shared/lib/format';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { useListAgentsQuery } from '../agentsApi';
import { InlineText } from '@/shared/ui/InlineText';

export function AgentsPage() {
  const { data, error, isLoading, refetch } = useListAgentsQuery();
  const can = usePermissions();
  return (
    <>
      <PageHeader
        title="Agents"
        description="What can run, and how failures are retried and handed on."
        actions={
          can.canManageAgents && (
            <Link to="/agents/new" className="btn btn-primary">
              New agent
            </Link>
          )
        }
      />
      {error ? (
        <ErrorAlert error={error} title="Could not load agents" onRetry={refetch} />
      ) : isLoading ? (
        <Loading label="Loading agents…" />
      ) : !data || data.items.length === 0 ? (
        <EmptyState title="No agents are registered." />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Agents</caption>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Kind</th>
                <th scope="col">Retries</th>
                <th scope="col" className="num">
                  Timeout
                </th>
                <th scope="col" className="num">
                  Concurrency
                </th>
                <th scope="col">Fallback</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((a) => (
                <tr key={a.name} data-agent={a.name}>
                  <td>
                    <Link to={`/agents/${encodeURIComponent(a.name)}`}>
                      <strong>{a.name}</strong>
                    </Link>
                    {a.builtin && <span className="tag">built-in</span>}
                    {a.description && (
                      <div className="muted small">
                        <InlineText text={a.description} />
                      </div>
                    )}
                  </td>
                  <td>{a.kind}</td>
                  <td>
                    {(a.retry?.max_attempts ?? 5) <= 1 ? 'never' : `${a.retry?.max_attempts} attempts`}
                    <div className="muted small nowrap">
                      backoff {formatDuration(a.retry?.base_ms ?? 0)} – {formatDuration(a.retry?.cap_ms ?? 0)}
                    </div>
                  </td>
                  <td className="num">{formatDuration(a.timeout_ms ?? 0)}</td>
                  <td className="num">
                    {a.concurrency ?? <span className="muted">no limit</span>}
                    {a.concurrency_key && (
                      <div className="muted small nowrap" title="Concurrency key (a JSON pointer into the input)">
                        {a.concurrency_per_key ?? '∞'} per <code>{a.concurrency_key}</code>
                      </div>
                    )}
                    {!a.concurrency_key && a.concurrency_per_key != null && <div className="muted small nowrap">{a.concurrency_per_key} per key</div>}
                    {a.rate_limit && (
                      <div className="muted small nowrap" title="Rate limit">
                        {a.rate_limit.limit} / {formatDuration(a.rate_limit.period_s * 1000)}
                        {a.rate_limit.key && (
                          <>
                            {' '}
                            per <code>{a.rate_limit.key}</code>
                          </>
                        )}
                      </div>
                    )}
                  </td>
                  <td>{a.fallback ? <Link to={`/agents/${encodeURIComponent(a.fallback)}`}>{a.fallback}</Link> : <span className="muted">—</span>}</td>
                  <td className="row-actions">
                    {can.canSubmit && (
                      <Link className="btn btn-small" to={`/tasks/new?agent=${encodeURIComponent(a.name)}`}>
                        Submit
                      </Link>
                    )}
                    {can.canManageAgents && (
                      <Link className="btn btn-small" to={`/agents/${encodeURIComponent(a.name)}`} aria-label={`Edit ${a.name}`}>
                        Edit
                      </Link>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
