// One schedule (its next and last runs, and its definition to edit), or a new one.
import { useId, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useListAgentsQuery } from '@/features/agents/agentsApi';
import { usePermissions } from '@/features/auth/permissions';
import { apiErrorInfo } from '@/shared/api/errors';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { JsonView } from '@/shared/ui/JsonView';
import { PageHeader } from '@/shared/ui/PageHeader';
import { LastRuns } from '../components/LastRuns';
import { NextRuns } from '../components/NextRuns';
import { ScheduleActions } from '../components/ScheduleActions';
import { ScheduleForm } from '../components/ScheduleForm';
import { specOf } from '../scheduleForm';
import { SCHEDULES_POLL_MS, useCreateScheduleMutation, useGetScheduleQuery, useUpdateScheduleMutation } from '../schedulesApi';

export function ScheduleEditPage() {
  const id = useId();
  const { name } = useParams();
  const creating = name === undefined;
  const navigate = useNavigate();
  const can = usePermissions();
  const schedule = useGetScheduleQuery(name ?? '', { skip: creating, pollingInterval: SCHEDULES_POLL_MS, skipPollingIfUnfocused: true });
  const agents = useListAgentsQuery();
  const [create, createState] = useCreateScheduleMutation();
  const [update, updateState] = useUpdateScheduleMutation();
  const [saved, setSaved] = useState(false);

  if (creating) {
    if (!can.canManageSchedules) return <div className="alert alert-info">Only admins can create schedules.</div>;
    return (
      <>
        <PageHeader title="New schedule" description={<Link to="/schedules">All schedules</Link>} />
        {agents.error && <ErrorAlert error={agents.error} title="Could not load agents" onRetry={agents.refetch} />}
        <ScheduleForm
          initial={null}
          agents={agents.data?.items ?? []}
          creating
          submitting={createState.isLoading}
          error={createState.error}
          onSubmit={async (spec) => {
            try {
              const created = await create(spec).unwrap();
              navigate(`/schedules/${encodeURIComponent(created.name)}`);
            } catch {
              // Shown by the form.
            }
          }}
        />
      </>
    );
  }

  const s = schedule.currentData;
  if (!s && (schedule.isFetching || schedule.isUninitialized)) return <Loading label="Loading the schedule…" />;
  if (!s) {
    return (
      <>
        <PageHeader title={name} />
        <ErrorAlert error={schedule.error} title={apiErrorInfo(schedule.error)?.status === 404 ? 'No such schedule' : 'Could not load the schedule'} onRetry={schedule.refetch} />
        <Link to="/schedules">Back to schedules</Link>
      </>
    );
  }

  return (
    <>
      <PageHeader
        title={
          <>
            {s.name}
            {s.paused && <span className="tag tag-paused">paused</span>}
          </>
        }
        description={
          <>
            <Link to="/schedules">All schedules</Link> · runs <Link to={`/agents/${encodeURIComponent(s.agent)}`}>{s.agent}</Link> at <code>{s.cron}</code> ({s.timezone})
          </>
        }
        actions={can.canManageSchedules && <ScheduleActions schedule={s} onDeleted={() => navigate('/schedules')} />}
      />
      {schedule.error && <ErrorAlert error={schedule.error} title="Could not refresh the schedule" />}
      <div className="grid-2">
        <section className="card" aria-labelledby={`${id}-next`}>
          <h2 id={`${id}-next`}>Next runs</h2>
          {s.paused ? (
            <p className="muted">Paused: nothing fires until it is resumed.</p>
          ) : s.next_runs.length === 0 ? (
            <p className="muted">It never fires again.</p>
          ) : (
            <NextRuns runs={s.next_runs} timeZone={s.timezone} label="Next runs" />
          )}
        </section>
        <section className="card" aria-labelledby={`${id}-facts`}>
          <h2 id={`${id}-facts`}>Settings</h2>
          <dl className="facts">
            <div>
              <dt>Overlap</dt>
              <dd>{s.overlap.replace('_', ' ')}</dd>
            </div>
            <div>
              <dt>Catch-up</dt>
              <dd>{s.catchup}</dd>
            </div>
            <div>
              <dt>Runs as</dt>
              <dd className="mono">{s.owner ? (s.owner === can.userId ? 'you' : s.owner) : '—'}</dd>
            </div>
          </dl>
        </section>
      </div>
      <section className="page-section" aria-labelledby={`${id}-last`}>
        <h2 id={`${id}-last`}>Last runs</h2>
        <LastRuns schedule={s} />
      </section>
      <section className="page-section" aria-labelledby={`${id}-edit`}>
        <h2 id={`${id}-edit`}>{can.canManageSchedules ? 'Edit' : 'Definition'}</h2>
        {can.canManageSchedules ? (
          <>
            {saved && !updateState.isLoading && (
              <div className="alert alert-success" role="status">
                Saved.
              </div>
            )}
            <ScheduleForm
              key={s.updated_at}
              initial={s}
              agents={agents.data?.items ?? []}
              creating={false}
              submitting={updateState.isLoading}
              error={updateState.error}
              onSubmit={async (spec) => {
                setSaved(false);
                try {
                  await update({ name: s.name, spec }).unwrap();
                  setSaved(true);
                } catch {
                  // Shown by the form.
                }
              }}
            />
          </>
        ) : (
          <>
            <p className="muted">Only admins can change schedules.</p>
            <div className="card">
              <JsonView value={specOf(s)} label="Definition" />
            </div>
          </>
        )}
      </section>
    </>
  );
}
