// Recent alert events, newest first; new ones arrive live over the app's connection.
import type { AlertEvent } from '@/shared/api/types';
import { EmptyState } from '@/shared/ui/Feedback';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { formatAlertValue, formatThreshold } from '../ruleForm';
import { AlertEventBadge } from './AlertBadges';

const NOTIFY_LABELS: Record<AlertEvent['notify_status'], string> = { none: '', pending: 'webhook pending', sent: 'webhook sent', failed: 'webhook failed' };

export function AlertEventsList({ events }: { events: AlertEvent[] }) {
  if (events.length === 0) {
    return <EmptyState title="No alert events yet.">Rules that start or stop firing show up here as it happens.</EmptyState>;
  }
  return (
    <div className="table-wrap">
      <table className="table alert-events">
        <caption className="visually-hidden">Recent alert events</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Rule</th>
            <th scope="col">Time</th>
            <th scope="col" className="num">
              Value
            </th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-alert-event={e.id}>
              <td>
                <AlertEventBadge state={e.state} />
              </td>
              <td>
                {e.rule_name}
                {e.agent && <span className="muted small"> · {e.agent}</span>}
              </td>
              <td className="nowrap">
                <RelativeTime iso={e.at} />
              </td>
              <td className="num nowrap" title={`Threshold ${formatThreshold(e.kind, e.threshold)}`}>
                {formatAlertValue(e.kind, e.value)}
              </td>
              <td className="alert-message">
                {e.message}
                {NOTIFY_LABELS[e.notify_status] && (
                  <span className={`tag notify-${e.notify_status}`} title={e.notify_error ?? undefined}>
                    {NOTIFY_LABELS[e.notify_status]}
                  </span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
