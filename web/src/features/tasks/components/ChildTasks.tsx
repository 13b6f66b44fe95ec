// The tasks a task submitted (fan-out), each with its own children one click away.
import type { Task } from '@/shared/api/types';
import { ErrorAlert } from '@/shared/ui/Feedback';
import { useListTasksQuery } from '../tasksApi';
import { TaskTable } from './TaskTable';

export function ChildTasks({ task }: { task: Task }) {
  const { currentData: data, error } = useListTasksQuery({ parentId: task.id, limit: 100 });
  if (error) return <ErrorAlert error={error} title="Could not load child tasks" />;
  if (!data || data.items.length === 0) return null;
  return (
    <section className="card" aria-labelledby="children-title">
      <h2 id="children-title">Child tasks ({data.items.length}{data.next_cursor ? '+' : ''})</h2>
      <TaskTable tasks={data.items} caption="Child tasks" showError />
    </section>
  );
}
