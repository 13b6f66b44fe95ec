// A schedule's recent firings, newest first: when each was due, when it fired, and its task.
import { Link } from 'react-router';
import type { Schedule } from '@/shared/api/types';
import { shortId } from '@/shared/lib/format';
import { EmptyState } from '@/shared/ui/Feedback';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { RunStatus } from './RunStatus';
import { RunTime } from './RunTime';

export function LastRuns({ schedule }: { schedule: Schedule }) {
  if (schedule.last_runs.length === 0) {
    return <EmptyState title="It has not fired yet.">{schedule.paused ? 'It is paused: resume it, or run it now.' : 'Runs appear here as they start.'}</EmptyState>;
  }
  return (
    <div className="table-wrap">
      <table className="table">
        <caption className="visually-hidden">Last runs</caption>
        <thead>
          <tr>
            <th scope="col">Due</th>
            <th scope="col">Fired</th>
            <th scope="col">Task</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {schedule.last_runs.map((run) => (
            <tr key={run.task_id} data-run={run.task_id}>
              <td className="nowrap">
                <RunTime iso={run.scheduled_for} timeZone={schedule.timezone} />
              </td>
              <td className="nowrap">
                <RelativeTime iso={run.fired_at} />
              </td>
              <td>
                <Link to={`/tasks/${run.task_id}`} className="mono" title={run.task_id}>
                  {shortId(run.task_id)}
                </Link>
              </td>
              <td>
                <RunStatus run={run} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
