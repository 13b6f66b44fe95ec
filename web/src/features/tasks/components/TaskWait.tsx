// A waiting task on its page: what it waits for, and for a signal wait the form that sends it
// (to those who may manage the task); signals that arrive while the page is open are listed.
import { TERMINAL_STATUSES, type Task } from '@/shared/api/types';
import { formatDateTime } from '@/shared/lib/format';
import type { TaskStream } from '../tasksApi';
import { awaitedChildren, useChildTasks } from './ChildTasks';
import { SignalForm } from './SignalForm';
import { WaitDescription, waitSignal } from './WaitDescription';

const PREVIEW_CHARS = 120;

function preview(payload: unknown): string {
  const line = JSON.stringify(payload) ?? 'null';
  return line.length > PREVIEW_CHARS ? `${line.slice(0, PREVIEW_CHARS)}…` : line;
}

/** How many awaited children have finished, if the loaded children include them all. */
function useFinishedChildren(task: Task): number | undefined {
  const awaited = awaitedChildren(task);
  const { currentData } = useChildTasks(task.id, awaited.size === 0);
  if (awaited.size === 0 || !currentData) return undefined;
  const found = currentData.items.filter((c) => awaited.has(c.id));
  if (found.length < awaited.size) return undefined;
  return found.filter((c) => TERMINAL_STATUSES.has(c.status)).length;
}

/** "Sleeping until …", "Waiting for signal …", "Waiting for N child tasks", while the task waits. */
export function WaitBanner({ task }: { task: Task }) {
  const finishedChildren = useFinishedChildren(task);
  if (task.status !== 'waiting') return null;
  return (
    <div className="alert alert-wait" role="status" data-testid="task-wait">
      {task.wait ? <WaitDescription wait={task.wait} finishedChildren={finishedChildren} /> : 'Waiting.'}
    </div>
  );
}

export function TaskSignals({ task, stream, canSend }: { task: Task; stream: TaskStream | undefined; canSend: boolean }) {
  const signal = task.status === 'waiting' && task.wait ? waitSignal(task.wait) : null;
  const received = stream?.signals ?? [];
  if (!signal && received.length === 0) return null;
  return (
    <section className="card" aria-labelledby="signals-title">
      <h2 id="signals-title">{signal ? <>Send signal <code>{signal}</code></> : 'Signals'}</h2>
      {signal &&
        (canSend ? (
          // A fresh form for each wait.
          <SignalForm key={`${task.id}:${task.wait?.name ?? ''}`} taskId={task.id} signal={signal} />
        ) : (
          <p className="muted">The task waits for this signal. Its owner or an admin can send it.</p>
        ))}
      {received.length > 0 && (
        <>
          <h3 className="signals-received-title">Received while this page was open</h3>
          <ul className="signals-received" aria-label="Signals received">
            {received.map((r) => (
              <li key={r.seq}>
                <code>{r.name}</code> <time dateTime={r.at}>{formatDateTime(r.at)}</time> <code className="muted">{preview(r.payload)}</code>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
