import { formatDateTime } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { useListWorkersQuery } from '../workersApi';

/** A worker that has not sent a heartbeat for this long is probably gone. */
const STALE_MS = 30_000;

export function WorkersPage() {
  const { data, error, isLoading, refetch } = useListWorkersQuery(undefined, { pollingInterval: 5_000, skipPollingIfUnfocused: true });
  const now = Math.max(useNow(), Date.now());
  return (
    <>
      <PageHeader title="Workers" description="Processes that run tasks: their slots and heartbeats, refreshed every few seconds." />
      {error && !data ? (
        <ErrorAlert error={error} title="Could not load workers" onRetry={refetch} />
      ) : isLoading ? (
        <Loading label="Loading workers…" />
      ) : !data || data.items.length === 0 ? (
        <EmptyState title="No workers are connected.">Tasks wait in the queue until a worker for their agent connects.</EmptyState>
      ) : (
        <>
          {error && <ErrorAlert error={error} title="Could not refresh" />}
          <div className="table-wrap">
            <table className="table">
              <caption className="visually-hidden">Workers</caption>
              <thead>
                <tr>
                  <th scope="col">Worker</th>
                  <th scope="col">Agents</th>
                  <th scope="col">Slots in use</th>
                  <th scope="col">Heartbeat</th>
                  <th scope="col">Started</th>
                  <th scope="col">Version</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((w) => {
                  const stale = now - Date.parse(w.heartbeat_at) > STALE_MS;
                  const used = w.slots ? w.slots_in_use / w.slots : 0;
                  return (
                    <tr key={w.id}>
                      <td>
                        <strong>{w.name}</strong> <span className="tag">{w.kind}</span>
                        <div className="muted small">{w.host ?? ''}</div>
                      </td>
                      <td>{w.agents.join(', ') || <span className="muted">none</span>}</td>
                      <td>
                        <div className="slots">
                          <meter min={0} max={w.slots || 1} value={w.slots_in_use} aria-label={`${w.name} slots in use`} optimum={0} high={(w.slots || 1) * 0.9} />
                          <span>
                            {w.slots_in_use} / {w.slots} ({Math.round(used * 100)} %)
                          </span>
                        </div>
                      </td>
                      <td>
                        <span className={stale ? 'stale' : 'fresh'}>
                          <RelativeTime iso={w.heartbeat_at} />
                          {stale ? ' — not responding' : ''}
                        </span>
                      </td>
                      <td title={formatDateTime(w.started_at)}>
                        <RelativeTime iso={w.started_at} />
                      </td>
                      <td className="mono">{w.version}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}
