// The schedules: what they run, when they fire next, and how their last run went.
import { Link } from 'react-router';
import type { Schedule } from '@/shared/api/types';
import { EmptyState } from '@/shared/ui/Feedback';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { RunStatus } from './RunStatus';
import { RunTime } from './RunTime';
import { ScheduleActions } from './ScheduleActions';

export function SchedulesTable({ schedules, canManage }: { schedules: Schedule[]; canManage: boolean }) {
  if (schedules.length === 0) {
    return (
      <EmptyState title="No schedules yet.">
        {canManage ? (
          <>
            <Link to="/schedules/new">Create one</Link> to submit tasks on a cron.
          </>
        ) : (
          'An admin can add schedules.'
        )}
      </EmptyState>
    );
  }
  return (
    <div className="table-wrap">
      <table className="table schedules">
        <caption className="visually-hidden">Schedules</caption>
        <thead>
          <tr>
            <th scope="col">Schedule</th>
            <th scope="col">Agent</th>
            <th scope="col">When</th>
            <th scope="col">Next run</th>
            <th scope="col">Last run</th>
            {canManage && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {schedules.map((s) => {
            const last = s.last_runs[0];
            return (
              <tr key={s.name} data-schedule={s.name} className={s.paused ? 'row-muted' : undefined}>
                <td>
                  <Link to={`/schedules/${encodeURIComponent(s.name)}`}>
                    <strong>{s.name}</strong>
                  </Link>
                  {s.paused && <span className="tag tag-paused">paused</span>}
                </td>
                <td>
                  <Link to={`/agents/${encodeURIComponent(s.agent)}`}>{s.agent}</Link>
                </td>
                <td className="nowrap">
                  <code>{s.cron}</code>
                  <div className="muted small">{s.timezone}</div>
                </td>
                <td className="nowrap">{s.paused ? <span className="muted">paused</span> : <RunTime iso={s.next_runs[0]} timeZone={s.timezone} />}</td>
                <td className="nowrap">
                  {last ? (
                    <>
                      <RunStatus run={last} /> <RelativeTime iso={last.fired_at} />
                    </>
                  ) : (
                    <span className="muted">never</span>
                  )}
                </td>
                {canManage && (
                  <td className="row-actions">
                    <ScheduleActions schedule={s} />
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
