import type { TaskStatus } from '@/shared/api/types';

const LABELS: Record<TaskStatus, string> = {
  queued: 'Queued',
  running: 'Running',
  waiting: 'Waiting',
  retrying: 'Retrying',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  dead: 'Dead',
};

export function statusLabel(status: TaskStatus): string {
  return LABELS[status] ?? status;
}

/** `title`: a tooltip, e.g. what a waiting task waits for. */
export function StatusBadge({ status, pending, title }: { status: TaskStatus; pending?: boolean; title?: string }) {
  return (
    <span className={`badge status-${status}`} data-status={status} title={title}>
      {status === 'running' && <span className="pulse" aria-hidden="true" />}
      {statusLabel(status)}
      {pending ? ' (cancelling)' : ''}
    </span>
  );
}
