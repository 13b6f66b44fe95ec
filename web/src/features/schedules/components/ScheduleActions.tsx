// Pause or resume, run now, delete: on a schedule's row and on its page (for those who may
// manage agents). Run now links to the task it started.
import { useState } from 'react';
import { Link } from 'react-router';
import type { Schedule, ScheduleTriggered } from '@/shared/api/types';
import { shortId } from '@/shared/lib/format';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { ErrorAlert } from '@/shared/ui/Feedback';
import { useDeleteScheduleMutation, useTriggerScheduleMutation, useUpdateScheduleMutation } from '../schedulesApi';
import { specOf } from '../scheduleForm';

export function ScheduleActions({ schedule, onDeleted }: { schedule: Schedule; onDeleted?: () => void }) {
  const [update, updateState] = useUpdateScheduleMutation();
  const [trigger, triggerState] = useTriggerScheduleMutation();
  const [remove] = useDeleteScheduleMutation();
  const [started, setStarted] = useState<ScheduleTriggered | null>(null);
  const [failure, setFailure] = useState<{ title: string; error: unknown } | null>(null);
  const { name, paused } = schedule;
  const busy = updateState.isLoading || triggerState.isLoading;

  const togglePause = async () => {
    setFailure(null);
    try {
      await update({ name, spec: { ...specOf(schedule), paused: !paused } }).unwrap();
    } catch (error) {
      setFailure({ title: paused ? 'Not resumed' : 'Not paused', error });
    }
  };

  const runNow = async () => {
    setFailure(null);
    setStarted(null);
    try {
      setStarted(await trigger(name).unwrap());
    } catch (error) {
      setFailure({ title: 'Not started', error });
    }
  };

  return (
    <>
      <div className="actions">
        <button type="button" className="btn btn-small" onClick={togglePause} disabled={busy} aria-label={`${paused ? 'Resume' : 'Pause'} ${name}`}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <button type="button" className="btn btn-small" onClick={runNow} disabled={busy} aria-label={`Run ${name} now`}>
          {triggerState.isLoading ? 'Starting…' : 'Run now'}
        </button>
        <ConfirmButton
          className="btn btn-small btn-danger"
          label="Delete"
          aria-label={`Delete schedule ${name}`}
          title={`Delete schedule ${name}?`}
          message="It fires no more tasks. Tasks it already started keep running and stay listed."
          confirmLabel="Delete schedule"
          danger
          onConfirm={async () => {
            await remove(name).unwrap();
            onDeleted?.();
          }}
        />
      </div>
      {started && (
        <p className="small schedule-started" role="status">
          Run started:{' '}
          <Link to={`/tasks/${started.task_id}`} className="mono" aria-label={`Task ${started.task_id}`}>
            {shortId(started.task_id)}
          </Link>
        </p>
      )}
      {failure && <ErrorAlert error={failure.error} title={failure.title} />}
    </>
  );
}
