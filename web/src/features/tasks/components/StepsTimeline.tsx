// A task's durable steps in recorded order, each as a bar on the same time axis as the attempts
// (from the task's creation), with the attempt that ran it and its output (folded) or error.
// Grows live with `step_finished` events (see liveCache.ts).
import { useMemo } from 'react';
import type { Task } from '@/shared/api/types';
import { durationBetween, formatDateTime, formatDuration } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';
import { CopyButton } from '@/shared/ui/CopyButton';
import { JsonCode } from '@/shared/ui/JsonView';
import { StatusBadge } from '@/shared/ui/StatusBadge';
import type { TaskStep } from '../tasksApi';

/** Characters of the one-line output shown while it is folded. */
const PREVIEW_CHARS = 80;

function StepOutput({ output }: { output: unknown }) {
  const [text, preview] = useMemo(() => {
    const line = JSON.stringify(output) ?? 'null';
    return [JSON.stringify(output, null, 2) ?? 'null', line.length > PREVIEW_CHARS ? `${line.slice(0, PREVIEW_CHARS)}…` : line];
  }, [output]);
  return (
    <details className="step-output">
      <summary>
        Output <code className="step-preview">{preview}</code>
      </summary>
      <div className="step-output-body">
        <CopyButton text={text} label="Copy JSON" />
        <JsonCode text={text} />
      </div>
    </details>
  );
}

export function StepsTimeline({ task, steps }: { task: Task; steps: TaskStep[] }) {
  const now = Math.max(useNow(), Date.now());
  const start = Date.parse(task.created_at);
  const end = Math.max(task.finished_at ? Date.parse(task.finished_at) : now, ...steps.map((s) => Date.parse(s.finished_at)));
  const span = Math.max(end - start, 1);
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(2)}%`;
  return (
    <ol className="timeline steps" aria-label="Steps">
      {steps.map((s) => {
        const e = Date.parse(s.finished_at);
        const b = s.started_at ? Date.parse(s.started_at) : e;
        return (
          <li key={s.name} className={`attempt attempt-${s.status} step`}>
            <div className="attempt-head">
              <h3 className="step-name mono">{s.name}</h3>
              <StatusBadge status={s.status} />
              <span className="muted small">
                Attempt {s.attempt} ·{' '}
                {s.started_at ? (
                  <>
                    <time dateTime={s.started_at}>{formatDateTime(s.started_at)}</time> · {formatDuration(durationBetween(s.started_at, s.finished_at))}
                  </>
                ) : (
                  <>
                    finished <time dateTime={s.finished_at}>{formatDateTime(s.finished_at)}</time>
                  </>
                )}
              </span>
            </div>
            <div className="track" aria-hidden="true">
              <div className="bar" style={{ left: pct(b), width: `max(3px, calc(${pct(e)} - ${pct(b)}))` }} />
            </div>
            {s.error && (
              <p className="attempt-error">
                <span className="tag">{s.error.class}</span> <code>{s.error.code}</code> {s.error.message}
              </p>
            )}
            {s.status === 'succeeded' && s.output !== undefined && <StepOutput output={s.output} />}
          </li>
        );
      })}
    </ol>
  );
}
