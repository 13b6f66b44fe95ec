import { Link } from 'react-router';
import type { Task } from '@/shared/api/types';
import { durationBetween, formatDuration, shortId } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { StatusBadge } from '@/shared/ui/StatusBadge';
import type { ReactNode } from 'react';
import { describeWait } from './WaitDescription';

export function TaskTable({ tasks, caption, showError, actions }: { tasks: Task[]; caption: string; showError?: boolean; actions?: (task: Task) => ReactNode }) {
  const now = useNow();
  return (
    <div className="table-wrap">
      <table className="table" data-testid="task-table">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Agent</th>
            <th scope="col">Status</th>
            <th scope="col" className="num hide-narrow">
              Attempts
            </th>
            <th scope="col">Created</th>
            <th scope="col" className="num hide-narrow">
              Duration
            </th>
            {showError && <th scope="col">Error</th>}
            {actions && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.id} data-task-id={t.id}>
              <td>
                <Link to={`/tasks/${t.id}`} className="mono" title={t.id}>
                  {shortId(t.id)}
                </Link>
                {t.cached && <span className="tag">cached</span>}
              </td>
              <td>{t.agent}</td>
              <td>
                <StatusBadge
                  status={t.status}
                  pending={t.cancel_requested && !['cancelled', 'succeeded', 'failed', 'dead'].includes(t.status)}
                  title={t.status === 'waiting' && t.wait ? describeWait(t.wait) : undefined}
                />
              </td>
              <td className="num hide-narrow">{t.attempts.length}</td>
              <td>
                <RelativeTime iso={t.created_at} />
              </td>
              <td className="num hide-narrow">{t.started_at ? formatDuration(durationBetween(t.started_at, t.finished_at, Math.max(now, Date.now()))) : '—'}</td>
              {showError && <td className="error-cell">{t.error ? <span title={t.error.message}>{t.error.message}</span> : <span className="muted">—</span>}</td>}
              {actions && <td className="row-actions">{actions(t)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
