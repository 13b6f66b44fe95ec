// The status of a task a schedule fired, linking to the task.
import { Link } from 'react-router';
import type { ScheduleRun } from '@/shared/api/types';
import { StatusBadge } from '@/shared/ui/StatusBadge';

export function RunStatus({ run }: { run: ScheduleRun }) {
  return (
    <Link to={`/tasks/${run.task_id}`} className="run-status" aria-label={`Task ${run.task_id}: ${run.status}`}>
      <StatusBadge status={run.status} />
    </Link>
  );
}
