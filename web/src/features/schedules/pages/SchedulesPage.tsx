// Schedules: every role that reads agents sees them; those who manage agents create, pause,
// resume, run now and delete. Read again every few seconds while open, for next and last runs.
import { Link } from 'react-router';
import { usePermissions } from '@/features/auth/permissions';
import { isNotAvailable } from '@/shared/api/errors';
import { Loading, NotAvailable, QueryError } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { SchedulesTable } from '../components/SchedulesTable';
import { SCHEDULES_POLL_MS, useListSchedulesQuery } from '../schedulesApi';

export function SchedulesPage() {
  const can = usePermissions();
  const schedules = useListSchedulesQuery(undefined, { pollingInterval: SCHEDULES_POLL_MS, skipPollingIfUnfocused: true });

  if (isNotAvailable(schedules.error)) {
    return (
      <>
        <PageHeader title="Schedules" />
        <NotAvailable what="Scheduling" />
      </>
    );
  }

  return (
    <>
      <PageHeader
        title="Schedules"
        description={
          can.canManageSchedules
            ? 'Tasks submitted on a cron, in a time zone of your choosing.'
            : 'Tasks submitted on a cron. Only admins create, pause or delete schedules.'
        }
        actions={
          can.canManageSchedules && (
            <Link to="/schedules/new" className="btn btn-primary">
              New schedule
            </Link>
          )
        }
      />
      {schedules.error && !schedules.data ? (
        <QueryError error={schedules.error} what="Schedules" onRetry={schedules.refetch} />
      ) : schedules.isLoading || !schedules.data ? (
        <Loading label="Loading schedules…" />
      ) : (
        <SchedulesTable schedules={schedules.data.items} canManage={can.canManageSchedules} />
      )}
    </>
  );
}
