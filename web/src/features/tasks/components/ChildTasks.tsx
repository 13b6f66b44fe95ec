// The tasks a task submitted or spawned, as a tree: each child links to its page and can be
// unfolded to show its own children (fetched when unfolded). Statuses follow live: list
// entries are patched by task events, and new children are refetched (see liveCache.ts).
// Each level shows the first CHILDREN_SHOWN children.
import { useId, useState } from 'react';
import { Link } from 'react-router';
import { TASK_STATUSES, TERMINAL_STATUSES, type Task, type TaskStatus } from '@/shared/api/types';
import { shortId } from '@/shared/lib/format';
import { ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { StatusBadge, statusLabel } from '@/shared/ui/StatusBadge';
import { useListTasksQuery } from '../tasksApi';
import { describeWait } from './WaitDescription';

export const CHILDREN_SHOWN = 100;

/** The one query every view of a task's children shares (one request, one cache entry). */
export function useChildTasks(parentId: string, skip = false) {
  return useListTasksQuery({ parentId, limit: CHILDREN_SHOWN }, { skip });
}

/** The children a waiting task joins on, if it waits for children. */
export function awaitedChildren(task: Task): ReadonlySet<string> {
  return new Set(task.status === 'waiting' && task.wait?.kind === 'children' ? (task.wait.children ?? []) : []);
}

function StatusCounts({ tasks }: { tasks: Task[] }) {
  const counts = new Map<TaskStatus, number>();
  for (const t of tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const order = (s: TaskStatus) => TASK_STATUSES.indexOf(s);
  return (
    <p className="child-counts">
      {[...counts].sort(([a], [b]) => order(a) - order(b)).map(([status, n]) => (
        <span key={status} className={`badge status-${status}`}>
          {n} {statusLabel(status).toLowerCase()}
        </span>
      ))}
    </p>
  );
}

function ChildList({ tasks, more, label, awaited, id }: { tasks: Task[]; more: boolean; label: string; awaited: ReadonlySet<string>; id?: string }) {
  return (
    <div id={id}>
      <ul className="child-tree" aria-label={label}>
        {tasks.map((t) => (
          <ChildNode key={t.id} task={t} awaited={awaited.has(t.id)} />
        ))}
      </ul>
      {more && <p className="muted small">Showing the first {CHILDREN_SHOWN}; there are more.</p>}
    </div>
  );
}

function NestedChildren({ parent, id }: { parent: Task; id: string }) {
  const { currentData: data, error, refetch } = useChildTasks(parent.id);
  if (error) return <ErrorAlert error={error} title="Could not load its child tasks" onRetry={refetch} />;
  if (!data) return <Loading label="Loading child tasks…" />;
  if (data.items.length === 0) {
    return (
      <p className="muted small child-none" id={id}>
        No child tasks.
      </p>
    );
  }
  return <ChildList id={id} tasks={data.items} more={!!data.next_cursor} label={`Child tasks of ${shortId(parent.id)}`} awaited={awaitedChildren(parent)} />;
}

function ChildNode({ task, awaited }: { task: Task; awaited: boolean }) {
  const [open, setOpen] = useState(false);
  const nestedId = useId();
  const finished = TERMINAL_STATUSES.has(task.status);
  return (
    <li className="child-node" data-task-id={task.id}>
      <div className="child-row">
        <button
          type="button"
          className="btn btn-small btn-link child-toggle"
          aria-expanded={open}
          aria-controls={open ? nestedId : undefined}
          aria-label={`${open ? 'Hide' : 'Show'} the child tasks of ${shortId(task.id)}`}
          onClick={() => setOpen(!open)}
        >
          <span aria-hidden="true">{open ? '▾' : '▸'}</span>
        </button>
        <Link to={`/tasks/${task.id}`} className="mono" title={task.id}>
          {shortId(task.id)}
        </Link>
        <span className="child-agent">{task.agent}</span>
        <StatusBadge status={task.status} pending={task.cancel_requested && !finished} title={task.wait ? describeWait(task.wait) : undefined} />
        {awaited && (
          <span className="tag" title="The parent task waits for it to finish">
            awaited
          </span>
        )}
        <span className="muted small">
          <RelativeTime iso={task.created_at} />
        </span>
        {task.error && (
          <span className="child-error" title={task.error.message}>
            {task.error.message}
          </span>
        )}
      </div>
      {open && <NestedChildren parent={task} id={nestedId} />}
    </li>
  );
}

export function ChildTasks({ task }: { task: Task }) {
  const { currentData: data, error, refetch } = useChildTasks(task.id);
  if (error) return <ErrorAlert error={error} title="Could not load child tasks" onRetry={refetch} />;
  if (!data || data.items.length === 0) return null;
  const more = !!data.next_cursor;
  return (
    <section className="card" aria-labelledby="children-title">
      <h2 id="children-title">
        Child tasks ({data.items.length}
        {more ? '+' : ''})
      </h2>
      <StatusCounts tasks={data.items} />
      <ChildList tasks={data.items} more={more} label="Child tasks" awaited={awaitedChildren(task)} />
    </section>
  );
}
