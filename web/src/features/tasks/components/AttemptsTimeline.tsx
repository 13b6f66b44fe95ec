// Each attempt as a bar on one time axis, from the task's creation to now (or its end).
import type { Task } from '@/shared/api/types';
import { durationBetween, formatDateTime, formatDuration } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';

export function AttemptsTimeline({ task }: { task: Task }) {
  const now = Math.max(useNow(), Date.now());
  if (task.attempts.length === 0) {
    return <p className="muted">No attempts yet{task.status === 'queued' ? ': waiting for a worker.' : '.'}</p>;
  }
  const start = Date.parse(task.created_at);
  const end = Math.max(
    task.finished_at ? Date.parse(task.finished_at) : now,
    ...task.attempts.map((a) => (a.finished_at ? Date.parse(a.finished_at) : now)),
  );
  const span = Math.max(end - start, 1);
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(2)}%`;
  return (
    <ol className="timeline" aria-label="Attempts">
      {task.attempts.map((a) => {
        const s = Date.parse(a.started_at);
        const e = a.finished_at ? Date.parse(a.finished_at) : now;
        return (
          <li key={a.number} className={`attempt attempt-${a.status}`}>
            <div className="attempt-head">
              <strong>Attempt {a.number}</strong>
              <span className={`badge attempt-badge-${a.status}`}>{a.status}</span>
              <span className="muted small">
                {formatDateTime(a.started_at)} · {formatDuration(durationBetween(a.started_at, a.finished_at, now))}
                {a.worker ? ` · ${a.worker}` : ''}
              </span>
            </div>
            <div className="track" aria-hidden="true">
              <div className="bar" style={{ left: pct(s), width: `max(3px, calc(${pct(e)} - ${pct(s)}))` }} />
            </div>
            {a.error && (
              <p className="attempt-error">
                <span className="tag">{a.error.class}</span> <code>{a.error.code}</code> {a.error.message}
                {a.error.retry_after_ms ? ` (retry after ${formatDuration(a.error.retry_after_ms)})` : ''}
              </p>
            )}
          </li>
        );
      })}
    </ol>
  );
}
