// Cancel and retry, shown only to people allowed to use them and only when they apply.
import { usePermissions } from '@/features/auth/permissions';
import type { Task } from '@/shared/api/types';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { shortId } from '@/shared/lib/format';
import { useCancelTaskMutation, useRetryTaskMutation } from '../tasksApi';

export const CANCELLABLE = new Set<Task['status']>(['queued', 'running', 'waiting', 'retrying']);
export const RETRYABLE = new Set<Task['status']>(['dead', 'failed', 'cancelled']);

export function TaskActions({ task, compact }: { task: Task; compact?: boolean }) {
  const can = usePermissions();
  const [cancel] = useCancelTaskMutation();
  const [retry] = useRetryTaskMutation();
  if (!can.canManageTask(task)) return null;
  const small = compact ? 'btn btn-small' : 'btn';
  return (
    <div className="actions">
      {CANCELLABLE.has(task.status) && !task.cancel_requested && (
        <ConfirmButton
          className={`${small} btn-danger`}
          label="Cancel"
          aria-label={`Cancel task ${shortId(task.id)}`}
          title="Cancel this task?"
          message={
            task.status === 'running'
              ? 'The agent is asked to stop; the task is cancelled once it does (or after a grace period).'
              : task.status === 'waiting'
                ? 'The task stops waiting and is cancelled at once, with its unfinished child tasks.'
                : 'The task will not run.'
          }
          confirmLabel="Cancel task"
          danger
          onConfirm={() => cancel(task.id).unwrap()}
        />
      )}
      {RETRYABLE.has(task.status) && (
        <ConfirmButton
          className={`${small} btn-primary`}
          label={task.status === 'dead' ? 'Replay' : 'Retry'}
          aria-label={`${task.status === 'dead' ? 'Replay' : 'Retry'} task ${shortId(task.id)}`}
          title={task.status === 'dead' ? 'Replay this dead task?' : 'Retry this task?'}
          message="It goes back to the queue with the same input and gets a fresh set of attempts."
          confirmLabel={task.status === 'dead' ? 'Replay task' : 'Retry task'}
          onConfirm={() => retry(task.id).unwrap()}
        />
      )}
    </div>
  );
}
