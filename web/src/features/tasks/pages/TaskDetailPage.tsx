import { Link, useParams } from 'react-router';
import { useMeQuery } from '@/features/auth/authApi';
import { fileAnchor } from '@/features/files/components/FileList';
import { usePermissions } from '@/features/auth/permissions';
import { TERMINAL_STATUSES } from '@/shared/api/types';
import { durationBetween, formatCost, formatDateTime, formatDuration, formatNumber } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { JsonView } from '@/shared/ui/JsonView';
import { PageHeader } from '@/shared/ui/PageHeader';
import { StatusBadge } from '@/shared/ui/StatusBadge';
import { AttemptsTimeline } from '../components/AttemptsTimeline';
import { ChildTasks } from '../components/ChildTasks';
import { LiveLog } from '../components/LiveLog';
import { PartialOutput } from '../components/PartialOutput';
import { StepsTimeline } from '../components/StepsTimeline';
import { TaskActions } from '../components/TaskActions';
import { TaskFiles } from '../components/TaskFiles';
import { TaskSignals, WaitBanner } from '../components/TaskWait';
import { describeWait } from '../components/WaitDescription';
import { useGetTaskLogsQuery, useGetTaskQuery, useGetTaskStepsQuery } from '../tasksApi';
import { usageOf } from '../usage';
import { useTaskLive } from '../useTaskLive';
import { apiErrorInfo, isNotAvailable } from '@/shared/api/errors';

/** `{"$file": id}` in the input and output links to the file's entry under Files. */
const fileHref = (fileId: string) => `#${fileAnchor(fileId)}`;

function TaskLink({ id }: { id: string | null | undefined }) {
  if (!id) return <span className="muted">—</span>;
  return (
    <Link to={`/tasks/${id}`} className="mono">
      {id}
    </Link>
  );
}

export function TaskDetailPage() {
  const { id = '' } = useParams();
  const task = useGetTaskQuery(id);
  const logs = useGetTaskLogsQuery(id);
  const steps = useGetTaskStepsQuery(id);
  const me = useMeQuery();
  const can = usePermissions();
  const now = Math.max(useNow(), Date.now());
  // `currentData`, not `data`: while another task loads, `data` still holds the previous one.
  const current = task.currentData;
  const stream = useTaskLive(id, current?.seq);

  if (!current && (task.isFetching || task.isUninitialized)) return <Loading label="Loading the task…" />;
  if (!current) {
    const info = apiErrorInfo(task.error);
    return (
      <>
        <PageHeader title="Task" />
        <ErrorAlert error={task.error} title={info?.status === 404 ? 'No such task' : 'Could not load the task'} onRetry={task.refetch} />
        <p>
          <Link to="/tasks">Back to tasks</Link>
        </p>
      </>
    );
  }
  const t = current;
  const finished = TERMINAL_STATUSES.has(t.status);
  const waitTitle = t.status === 'waiting' && t.wait ? describeWait(t.wait) : undefined;
  const waitingUntil = (t.status === 'queued' || t.status === 'retrying') && Date.parse(t.run_at) > now ? t.run_at : null;
  const usage = usageOf(t.output);

  return (
    <>
      <PageHeader
        title={
          <>
            Task <span className="mono title-id">{t.id}</span>
          </>
        }
        description={
          <>
            <Link to={`/tasks?agent=${encodeURIComponent(t.agent)}`}>{t.agent}</Link> · <StatusBadge status={t.status} pending={t.cancel_requested && !finished} title={waitTitle} />
            {t.cached && <span className="tag">from cache</span>}
          </>
        }
        actions={<TaskActions task={t} />}
      />
      {task.error && <ErrorAlert error={task.error} title="Could not refresh the task" />}
      {t.error && (
        <div className="alert alert-error" role="status">
          <strong>{t.status === 'retrying' ? 'The last attempt failed' : 'Failed'}:</strong> <span className="tag">{t.error.class}</span> <code>{t.error.code}</code> {t.error.message}
          {t.fallback_task_id && (
            <>
              {' '}
              · handed to fallback task <TaskLink id={t.fallback_task_id} />
            </>
          )}
        </div>
      )}
      <WaitBanner task={t} />
      <section className="card">
        <dl className="facts">
          <div>
            <dt>Status</dt>
            <dd data-testid="task-status">
              <StatusBadge status={t.status} pending={t.cancel_requested && !finished} title={waitTitle} />
            </dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{formatDateTime(t.created_at)}</dd>
          </div>
          {waitingUntil && (
            <div>
              <dt>Runs at</dt>
              <dd>{formatDateTime(waitingUntil)}</dd>
            </div>
          )}
          <div>
            <dt>Started</dt>
            <dd>{formatDateTime(t.started_at)}</dd>
          </div>
          <div>
            <dt>Finished</dt>
            <dd>{formatDateTime(t.finished_at)}</dd>
          </div>
          <div>
            <dt>Run time</dt>
            <dd>{t.started_at ? formatDuration(durationBetween(t.started_at, t.finished_at, now)) : '—'}</dd>
          </div>
          {usage && (
            <div>
              <dt>Tokens</dt>
              <dd data-testid="task-tokens">
                {formatNumber(usage.promptTokens + usage.completionTokens)}{' '}
                <span className="muted">
                  ({formatNumber(usage.promptTokens)} prompt, {formatNumber(usage.completionTokens)} completion)
                </span>
              </dd>
            </div>
          )}
          {usage && usage.cost !== null && (
            <div>
              <dt>Cost</dt>
              <dd data-testid="task-cost" title={String(usage.cost)}>
                {formatCost(usage.cost)}
              </dd>
            </div>
          )}
          <div>
            <dt>Priority</dt>
            <dd>{t.priority}</dd>
          </div>
          <div>
            <dt>Owner</dt>
            <dd className="mono">{t.owner_id ? (t.owner_id === me.data?.user.id ? 'you' : t.owner_id) : '—'}</dd>
          </div>
          {t.idempotency_key && (
            <div>
              <dt>Idempotency key</dt>
              <dd className="mono">{t.idempotency_key}</dd>
            </div>
          )}
          {t.trace_id && (
            <div>
              <dt>Trace</dt>
              <dd className="mono">{t.trace_id}</dd>
            </div>
          )}
          {t.schedule && (
            <div>
              <dt>Schedule</dt>
              <dd>
                <Link to={`/schedules/${encodeURIComponent(t.schedule)}`}>{t.schedule}</Link>
              </dd>
            </div>
          )}
          {t.scheduled_for && (
            <div>
              <dt>Scheduled for</dt>
              <dd>{formatDateTime(t.scheduled_for)}</dd>
            </div>
          )}
          {t.concurrency_key && (
            <div>
              <dt>Concurrency key</dt>
              <dd className="mono">{t.concurrency_key}</dd>
            </div>
          )}
          {t.parent_id && (
            <div>
              <dt>Parent task</dt>
              <dd>
                <TaskLink id={t.parent_id} />
              </dd>
            </div>
          )}
          {t.fallback_of && (
            <div>
              <dt>Fallback of</dt>
              <dd>
                <TaskLink id={t.fallback_of} />
              </dd>
            </div>
          )}
          {t.fallback_task_id && (
            <div>
              <dt>Fallback task</dt>
              <dd>
                <TaskLink id={t.fallback_task_id} />
              </dd>
            </div>
          )}
        </dl>
      </section>
      <TaskSignals task={t} stream={stream} canSend={can.canManageTask(t)} />
      <PartialOutput stream={stream} live={!finished} />
      <div className="grid-2">
        <div className="card">
          <JsonView value={t.input} label="Input" emptyText="No input." fileHref={fileHref} />
        </div>
        <div className="card">
          <JsonView value={t.output ?? undefined} label="Output" emptyText={finished ? 'No output.' : 'The output appears here when the task succeeds.'} fileHref={fileHref} />
        </div>
      </div>
      <TaskFiles task={t} />
      <ChildTasks task={t} />
      <section className="card">
        <h2>Attempts</h2>
        <AttemptsTimeline task={t} />
      </section>
      {/* Only for tasks with durable steps (none on a server without them). */}
      {steps.currentData && steps.currentData.items.length > 0 ? (
        <section className="card" aria-labelledby="task-steps-title">
          <h2 id="task-steps-title">Steps ({steps.currentData.items.length})</h2>
          <StepsTimeline task={t} steps={steps.currentData.items} />
        </section>
      ) : steps.error && !isNotAvailable(steps.error) ? (
        <ErrorAlert error={steps.error} title="Could not load the steps" onRetry={steps.refetch} />
      ) : null}
      <section className="card">
        <h2>Log</h2>
        {logs.error ? (
          <ErrorAlert error={logs.error} title="Could not load the log" onRetry={logs.refetch} />
        ) : !logs.currentData ? (
          <Loading label="Loading the log…" />
        ) : (
          <LiveLog lines={logs.currentData.items} live={!finished} />
        )}
      </section>
    </>
  );
}
