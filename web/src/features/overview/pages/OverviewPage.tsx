import { useId, useState } from 'react';
import { Link } from 'react-router';
import { useListAgentsQuery } from '@/features/agents/agentsApi';
import { useListWorkersQuery } from '@/features/workers/workersApi';
import { TimeChart } from '@/shared/charts/TimeChart';
import { formatDuration, formatNumber, formatPercent } from '@/shared/lib/format';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { RANGES, useDashboard } from '../useDashboard';

function sum(values: (number | null)[]): number {
  return values.reduce<number>((s, v) => s + (v ?? 0), 0);
}

function Stat({ label, value, hint }: { label: string; value: string; hint?: string }) {
  return (
    <div className="stat">
      <div className="stat-value">{value}</div>
      <div className="stat-label">{label}</div>
      {hint && <div className="muted small">{hint}</div>}
    </div>
  );
}

const ms = (v: number) => formatDuration(v);
const pct = (v: number) => `${Math.round(v * 100)}%`;
const count = (v: number) => formatNumber(v, 1);

export function OverviewPage() {
  const id = useId();
  const [rangeIndex, setRangeIndex] = useState(0);
  const [agent, setAgent] = useState<string>('');
  const range = RANGES[rangeIndex]!;
  const d = useDashboard(range, agent || undefined);
  const agents = useListAgentsQuery();
  const workers = useListWorkersQuery(undefined, { pollingInterval: 10_000, skipPollingIfUnfocused: true });

  const finished = sum(d.throughput.succeeded) + sum(d.throughput.failed);
  const failRatio = finished ? sum(d.throughput.failed) / finished : null;
  const queueRow = d.queues.data?.items.filter((q) => !agent || q.agent === agent) ?? [];
  const waiting = queueRow.reduce((s, q) => s + q.ready + q.scheduled, 0);
  const running = queueRow.reduce((s, q) => s + q.running, 0);
  const slots = (workers.data?.items ?? []).reduce((s, w) => s + w.slots, 0);
  const used = (workers.data?.items ?? []).reduce((s, w) => s + w.slots_in_use, 0);
  const bucket = formatDuration(range.step);

  return (
    <>
      <PageHeader
        title="Overview"
        description={
          d.source === 'server'
            ? 'Live numbers from the server’s metrics.'
            : 'Live numbers computed from recent tasks and queue samples (this server has no metrics API yet).'
        }
        actions={
          <div className="inline-fields">
            <label htmlFor={`${id}-agent`} className="visually-hidden">
              Agent
            </label>
            <select id={`${id}-agent`} value={agent} onChange={(e) => setAgent(e.target.value)}>
              <option value="">All agents</option>
              {(agents.data?.items ?? []).map((a) => (
                <option key={a.name} value={a.name}>
                  {a.name}
                </option>
              ))}
            </select>
            <label htmlFor={`${id}-range`} className="visually-hidden">
              Time range
            </label>
            <select id={`${id}-range`} value={rangeIndex} onChange={(e) => setRangeIndex(Number(e.target.value))}>
              {RANGES.map((r, i) => (
                <option key={r.label} value={i}>
                  {r.label}
                </option>
              ))}
            </select>
          </div>
        }
      />
      {d.error && <ErrorAlert error={d.error} title="Could not load the numbers" />}
      <section className="stats" aria-label="Now">
        <Stat label="Waiting" value={formatNumber(waiting)} hint="queued or backing off" />
        <Stat label="Running" value={formatNumber(running)} />
        <Stat label="Finished" value={formatNumber(finished)} hint={range.label.toLowerCase()} />
        <Stat label="Failure rate" value={formatPercent(failRatio)} hint={range.label.toLowerCase()} />
        <Stat label="Worker slots in use" value={workers.data ? `${used} / ${slots}` : '—'} hint={workers.data ? `${workers.data.items.length} worker${workers.data.items.length === 1 ? '' : 's'}` : undefined} />
      </section>
      {d.loading ? (
        <Loading label="Loading numbers…" />
      ) : (
        <div className="charts">
          <TimeChart
            title={`Throughput (tasks per ${bucket})`}
            times={d.times}
            format={count}
            integer
            emptyText="No tasks in this window."
            series={[
              { name: 'Submitted', color: 'var(--chart-1)', values: d.throughput.submitted },
              { name: 'Succeeded', color: 'var(--chart-2)', values: d.throughput.succeeded },
              { name: 'Failed', color: 'var(--chart-4)', values: d.throughput.failed },
            ]}
          />
          <TimeChart
            title="Latency, submission to end"
            times={d.times}
            format={ms}
            emptyText="No finished tasks in this window."
            series={[
              { name: 'p50', color: 'var(--chart-2)', values: d.latency.p50 },
              { name: 'p95', color: 'var(--chart-3)', values: d.latency.p95 },
              { name: 'p99', color: 'var(--chart-4)', values: d.latency.p99 },
            ]}
          />
          <TimeChart
            title="Queue depth"
            times={d.times}
            format={count}
            integer
            note={d.source === 'browser' ? 'Sampled every 5 s while this page is open.' : undefined}
            emptyText="Nothing waiting or running."
            series={[
              { name: 'Ready', color: 'var(--chart-1)', values: d.queue.ready },
              { name: 'Scheduled', color: 'var(--chart-3)', values: d.queue.scheduled },
              { name: 'Running', color: 'var(--chart-2)', values: d.queue.running },
            ]}
          />
          <TimeChart
            title="Failure rate"
            times={d.times}
            format={pct}
            max={1}
            emptyText="No failures in this window."
            series={[{ name: 'Failed / finished', color: 'var(--chart-4)', values: d.failureRate }]}
          />
        </div>
      )}
      {d.truncated && <p className="muted small">Computed from the newest 500 tasks of this window; older ones are left out.</p>}
      <section aria-labelledby={`${id}-agents`}>
        <h2 id={`${id}-agents`}>Per agent</h2>
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Per agent, {range.label.toLowerCase()}</caption>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col" className="num">
                  Ready
                </th>
                <th scope="col" className="num">
                  Scheduled
                </th>
                <th scope="col" className="num">
                  Running
                </th>
                <th scope="col" className="num">
                  Finished
                </th>
                <th scope="col" className="num">
                  Failure rate
                </th>
                <th scope="col" className="num">
                  p50
                </th>
                <th scope="col" className="num">
                  p95
                </th>
              </tr>
            </thead>
            <tbody>
              {d.perAgent.length === 0 ? (
                <tr>
                  <td colSpan={8} className="muted">
                    Nothing queued or finished {range.label.toLowerCase()}.
                  </td>
                </tr>
              ) : (
                d.perAgent.map((a) => (
                  <tr key={a.agent}>
                    <td>
                      <Link to={`/tasks?agent=${encodeURIComponent(a.agent)}`}>{a.agent}</Link>
                    </td>
                    <td className="num">{a.ready}</td>
                    <td className="num">{a.scheduled}</td>
                    <td className="num">{a.running}</td>
                    <td className="num">{a.finished}</td>
                    <td className={`num${a.failureRate && a.failureRate > 0.05 ? ' bad' : ''}`}>{formatPercent(a.failureRate)}</td>
                    <td className="num">{formatDuration(a.p50)}</td>
                    <td className="num">{formatDuration(a.p95)}</td>
                  </tr>
                ))
              )}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
