// Alerts: the rules with their state, and what fired and resolved recently (live). Admins
// create and delete rules; everyone else reads.
import { useId } from 'react';
import { usePermissions } from '@/features/auth/permissions';
import { isNotAvailable } from '@/shared/api/errors';
import { Loading, NotAvailable, QueryError } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { useListAlertEventsQuery, useListAlertRulesQuery } from '../alertsApi';
import { AlertEventsList } from '../components/AlertEventsList';
import { AlertRuleForm } from '../components/AlertRuleForm';
import { AlertRulesTable } from '../components/AlertRulesTable';

/** Pending states have no event: read the rules again now and then while the page is open. */
const RULES_POLL_MS = 30_000;

export function AlertsPage() {
  const id = useId();
  const can = usePermissions();
  const rules = useListAlertRulesQuery(undefined, { pollingInterval: RULES_POLL_MS, skipPollingIfUnfocused: true });
  const events = useListAlertEventsQuery({});
  const eventItems = events.data?.items ?? [];

  if (isNotAvailable(rules.error)) {
    return (
      <>
        <PageHeader title="Alerts" />
        <NotAvailable what="Alerting" />
      </>
    );
  }

  const firing = rules.data?.items.filter((r) => r.state.status === 'firing').length ?? 0;

  return (
    <>
      <PageHeader
        title="Alerts"
        description={
          can.canManageAlerts
            ? 'Rules watch failure rates, queues and workers, and notify a webhook when they fire.'
            : 'Rules watch failure rates, queues and workers. Only admins create or delete rules.'
        }
        actions={
          rules.data && (
            <span className={`badge ${firing > 0 ? 'alert-state-firing' : 'alert-state-ok'}`} data-testid="firing-count">
              {firing > 0 ? `${firing} firing` : 'All clear'}
            </span>
          )
        }
      />
      {can.canManageAlerts && <AlertRuleForm />}
      <section aria-labelledby={`${id}-rules`} className="page-section">
        <h2 id={`${id}-rules`}>Rules</h2>
        {rules.error ? (
          <QueryError error={rules.error} what="Alert rules" onRetry={rules.refetch} />
        ) : rules.isLoading || !rules.data ? (
          <Loading label="Loading alert rules…" />
        ) : (
          <AlertRulesTable rules={rules.data.items} events={eventItems} canManage={can.canManageAlerts} />
        )}
      </section>
      <section aria-labelledby={`${id}-events`} className="page-section">
        <h2 id={`${id}-events`}>Recent events</h2>
        {events.error ? (
          <QueryError error={events.error} what="Alert events" onRetry={events.refetch} />
        ) : events.isLoading || !events.data ? (
          <Loading label="Loading alert events…" />
        ) : (
          <AlertEventsList events={eventItems} />
        )}
      </section>
    </>
  );
}
