import type { TaskStatus } from '@/shared/api/types';

const LABELS: Record<TaskStatus, string> = {
  queued: 'Queued',
  running: 'Running',
  retrying: 'Retrying',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  dead: 'Dead',
};

export function statusLabel(status: TaskStatus): string {
  return LABELS[status] ?? status;
}

export function StatusBadge({ status, pending }: { status: TaskStatus; pending?: boolean }) {
  return (
    <span className={`badge status-${status}`} data-status={status}>
      {status === 'running' && <span className="pulse" aria-hidden="true" />}
      {statusLabel(status)}
      {pending ? ' (cancelling)' : ''}
    </span>
  );
}
