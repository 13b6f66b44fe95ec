import type { AlertEvent, AlertStatus } from '@/shared/api/types';

const STATUS_LABELS: Record<AlertStatus, string> = { ok: 'OK', pending: 'Pending', firing: 'Firing' };

/** A rule's state: ok, pending (breached, waiting its for-duration) or firing. */
export function AlertStatusBadge({ status }: { status: AlertStatus }) {
  return (
    <span className={`badge alert-state-${status}`} data-alert-state={status}>
      {status === 'firing' && <span className="pulse" aria-hidden="true" />}
      {STATUS_LABELS[status] ?? status}
    </span>
  );
}

export function AlertEventBadge({ state }: { state: AlertEvent['state'] }) {
  return (
    <span className={`badge alert-state-${state === 'firing' ? 'firing' : 'ok'}`} data-event-state={state}>
      {state === 'firing' ? 'Firing' : 'Resolved'}
    </span>
  );
}
