// What a waiting task waits for, in words: "Sleeping until …", "Waiting for signal approval
// (until …)", "Waiting for 3 child tasks" — as text (tooltips) and as markup (the task page).
import type { TaskWait } from '@/shared/api/types';
import { formatDateTime, formatRelative } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';

/** The signal a wait is for: `signal`, or its step name `signal:{name}` without the prefix. */
export function waitSignal(wait: TaskWait): string | null {
  if (wait.kind !== 'signal') return null;
  return wait.signal ?? (wait.name.startsWith('signal:') ? wait.name.slice('signal:'.length) : wait.name);
}

function childTasks(n: number): string {
  return n === 1 ? '1 child task' : `${n} child tasks`;
}

/** One line of plain text, e.g. for a status badge's tooltip. */
export function describeWait(wait: TaskWait): string {
  switch (wait.kind) {
    case 'sleep':
      return wait.until ? `Sleeping until ${formatDateTime(wait.until)}` : 'Sleeping';
    case 'signal':
      return `Waiting for signal ${waitSignal(wait)}${wait.until ? ` (until ${formatDateTime(wait.until)})` : ''}`;
    case 'children':
      return `Waiting for ${childTasks(wait.children?.length ?? 0)}`;
    default:
      // A kind this UI does not know yet.
      return `Waiting (${(wait as TaskWait).name})`;
  }
}

function Until({ iso, now }: { iso: string; now: number }) {
  return (
    <>
      <time dateTime={iso}>{formatDateTime(iso)}</time> <span className="muted">({formatRelative(iso, now)})</span>
    </>
  );
}

/**
 * The same as markup. `finishedChildren`: how many of the awaited children have finished, when
 * that is known.
 */
export function WaitDescription({ wait, finishedChildren }: { wait: TaskWait; finishedChildren?: number }) {
  const now = Math.max(useNow(), Date.now());
  switch (wait.kind) {
    case 'sleep':
      return wait.until ? (
        <>
          Sleeping until <Until iso={wait.until} now={now} />
        </>
      ) : (
        <>Sleeping</>
      );
    case 'signal':
      return (
        <>
          Waiting for signal <code className="wait-signal">{waitSignal(wait)}</code>
          {wait.until && (
            <>
              {' '}
              (until <time dateTime={wait.until}>{formatDateTime(wait.until)}</time>, {formatRelative(wait.until, now)})
            </>
          )}
        </>
      );
    case 'children': {
      const n = wait.children?.length ?? 0;
      return (
        <>
          Waiting for {childTasks(n)}
          {finishedChildren !== undefined && n > 0 && <span className="muted"> ({finishedChildren} of {n} finished)</span>}
        </>
      );
    }
    default:
      return <>{describeWait(wait)}</>;
  }
}
