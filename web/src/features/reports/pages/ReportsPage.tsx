import { useId, useMemo, useState } from 'react';
import { Link } from 'react-router';
import { formatCost, formatDateTime, formatDuration, formatNumber, formatPercent } from '@/shared/lib/format';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import type { AgentReport } from '@/shared/api/types';
import { useGetAgentsReportQuery, usageColumns } from '../reportsApi';

export const PERIODS = [
  { label: 'Last 24 hours', hours: 24 },
  { label: 'Last 7 days', hours: 24 * 7 },
  { label: 'Last 30 days', hours: 24 * 30 },
] as const;

const MINUTE_MS = 60_000;

/** The start of a period ending now, to the minute, so re-renders ask for the same report. */
function periodStart(hours: number, now = Date.now()): string {
  return new Date(Math.floor((now - hours * 3_600_000) / MINUTE_MS) * MINUTE_MS).toISOString();
}

function Tokens({ row }: { row: AgentReport }) {
  if (typeof row.tokens !== 'number') return <span className="muted">—</span>;
  const split = typeof row.prompt_tokens === 'number' && typeof row.completion_tokens === 'number';
  return (
    <>
      {formatNumber(row.tokens)}
      {split && (
        <div className="muted small">
          {formatNumber(row.prompt_tokens!)} prompt, {formatNumber(row.completion_tokens!)} completion
        </div>
      )}
    </>
  );
}

export function ReportsPage() {
  const id = useId();
  const [periodIndex, setPeriodIndex] = useState(0);
  const period = PERIODS[periodIndex]!;
  const from = useMemo(() => periodStart(period.hours), [period.hours]);
  const { data, error, isFetching, refetch } = useGetAgentsReportQuery({ from });
  const rows = data?.agents ?? [];
  const show = usageColumns(rows);

  return (
    <>
      <PageHeader
        title="Reports"
        description={data ? `Tasks submitted from ${formatDateTime(data.from)} to ${formatDateTime(data.to)}, per agent.` : 'Tasks submitted in a period, per agent.'}
        actions={
          <>
            <label htmlFor={`${id}-period`} className="visually-hidden">
              Period
            </label>
            <select id={`${id}-period`} value={periodIndex} onChange={(e) => setPeriodIndex(Number(e.target.value))}>
              {PERIODS.map((p, i) => (
                <option key={p.label} value={i}>
                  {p.label}
                </option>
              ))}
            </select>
          </>
        }
      />
      {error && !data ? (
        <ErrorAlert error={error} title="Could not load the report" onRetry={refetch} />
      ) : !data ? (
        <Loading label="Loading the report…" />
      ) : rows.length === 0 ? (
        <EmptyState title="No tasks in this period." />
      ) : (
        <>
          {error && <ErrorAlert error={error} title="Could not refresh the report" />}
          <div className="table-wrap" aria-busy={isFetching}>
            <table className="table" data-testid="agents-report">
              <caption className="visually-hidden">Per agent, {period.label.toLowerCase()}</caption>
              <thead>
                <tr>
                  <th scope="col">Agent</th>
                  <th scope="col" className="num">
                    Tasks
                  </th>
                  <th scope="col" className="num">
                    Succeeded
                  </th>
                  <th scope="col" className="num">
                    Failed
                  </th>
                  <th scope="col" className="num">
                    Success rate
                  </th>
                  <th scope="col" className="num">
                    p50
                  </th>
                  <th scope="col" className="num">
                    p95
                  </th>
                  <th scope="col" className="num">
                    Retries
                  </th>
                  <th scope="col" className="num">
                    Cache hits
                  </th>
                  {show.tokens && (
                    <th scope="col" className="num">
                      Tokens
                    </th>
                  )}
                  {show.cost && (
                    <th scope="col" className="num">
                      Cost
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.agent}>
                    <td>
                      <Link to={`/tasks?agent=${encodeURIComponent(r.agent)}`}>{r.agent}</Link>
                    </td>
                    <td className="num">{formatNumber(r.tasks)}</td>
                    <td className="num">{formatNumber(r.succeeded)}</td>
                    <td className="num" title={`${r.dead} dead, ${r.failed} handed to a fallback`}>
                      {formatNumber(r.failed + r.dead)}
                    </td>
                    <td className="num">{formatPercent(r.success_rate ?? null)}</td>
                    <td className="num">{formatDuration(r.latency_p50_ms)}</td>
                    <td className="num">{formatDuration(r.latency_p95_ms)}</td>
                    <td className="num">{formatNumber(r.retries)}</td>
                    <td className="num">{formatNumber(r.cached)}</td>
                    {show.tokens && (
                      <td className="num">
                        <Tokens row={r} />
                      </td>
                    )}
                    {show.cost && <td className="num">{typeof r.cost === 'number' ? formatCost(r.cost) : <span className="muted">—</span>}</td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {show.cost && <p className="muted small">Costs are in the currency of the agents’ prices (price per 1,000 tokens).</p>}
        </>
      )}
    </>
  );
}
