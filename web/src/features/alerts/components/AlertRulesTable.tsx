// The alert rules with their current state; admins may delete them.
import type { AlertEvent, AlertRule } from '@/shared/api/types';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { EmptyState } from '@/shared/ui/Feedback';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { useDeleteAlertRuleMutation } from '../alertsApi';
import { KIND_LABELS, formatAlertValue, formatThreshold } from '../ruleForm';
import { AlertStatusBadge } from './AlertBadges';

/** When the rule's state last changed: its breach start, else its newest event, else its last edit. */
export function lastChange(rule: AlertRule, events: readonly AlertEvent[]): string {
  if (rule.state.status !== 'ok' && rule.state.since) return rule.state.since;
  const newest = events.find((e) => e.rule_id === rule.id);
  return newest?.at ?? rule.updated_at;
}

function DeleteRule({ rule }: { rule: AlertRule }) {
  const [remove] = useDeleteAlertRuleMutation();
  return (
    <ConfirmButton
      className="btn btn-small btn-danger"
      label="Delete"
      aria-label={`Delete rule ${rule.name}`}
      title={`Delete rule ${rule.name}?`}
      message="The rule stops being evaluated and its webhook gets no more notifications. Its past events stay listed."
      confirmLabel="Delete rule"
      danger
      onConfirm={() => remove(rule.id).unwrap()}
    />
  );
}

export function AlertRulesTable({ rules, events, canManage }: { rules: AlertRule[]; events: readonly AlertEvent[]; canManage: boolean }) {
  if (rules.length === 0) {
    return (
      <EmptyState title="No alert rules yet.">
        {canManage ? 'Create one above to be told when failures, queues or workers need attention.' : 'An admin can add rules.'}
      </EmptyState>
    );
  }
  return (
    <div className="table-wrap">
      <table className="table alert-rules">
        <caption className="visually-hidden">Alert rules</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Kind</th>
            <th scope="col">Agent</th>
            <th scope="col">Threshold</th>
            <th scope="col">State</th>
            <th scope="col">Last change</th>
            {canManage && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {rules.map((rule) => (
            <tr key={rule.id} data-rule={rule.name} className={rule.state.status === 'firing' ? 'row-firing' : undefined}>
              <td>
                <span className="rule-name">{rule.name}</span>
                {rule.webhook_url !== undefined && rule.webhook_url !== null && <span className="tag">webhook</span>}
              </td>
              <td className="nowrap">{KIND_LABELS[rule.kind] ?? rule.kind}</td>
              <td>{rule.agent ?? <span className="muted">all agents</span>}</td>
              <td className="nowrap">
                {formatThreshold(rule.kind, rule.threshold)}
                <span className="muted small">
                  {' '}
                  over {rule.window_s} s{rule.for_s ? `, for ${rule.for_s} s` : ''}
                </span>
              </td>
              <td className="nowrap">
                <AlertStatusBadge status={rule.state.status} />
                {rule.state.value !== undefined && rule.state.value !== null && (
                  <span className="muted small" title="Last evaluated value">
                    {' '}
                    {formatAlertValue(rule.kind, rule.state.value)}
                  </span>
                )}
              </td>
              <td className="nowrap">
                <RelativeTime iso={lastChange(rule, events)} />
              </td>
              {canManage && (
                <td className="row-actions">
                  <DeleteRule rule={rule} />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
