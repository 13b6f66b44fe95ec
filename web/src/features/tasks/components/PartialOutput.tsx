// Output streamed before the result (e.g. an LLM's tokens), from the task's first event: what
// the server kept is replayed when the page opens, then the text grows live. Text pieces are
// joined; anything else is listed as JSON (the newest pieces).
import { useMemo } from 'react';
import { formatNumber } from '@/shared/lib/format';
import type { TaskStream } from '../tasksApi';
import { streamedText } from '../taskStream';

/** JSON pieces listed at most: a long stream of them is summed up, not drawn whole. */
const MAX_PIECES_LISTED = 200;

export function PartialOutput({ stream, live }: { stream: TaskStream | undefined; live: boolean }) {
  const partials = stream?.partials;
  const text = useMemo(() => (partials ? streamedText(partials) : null), [partials]);
  if (!stream || (stream.partials.length === 0 && stream.progress === null && !stream.progressMessage && !stream.cutNotice)) return null;
  const listed = stream.partials.slice(-MAX_PIECES_LISTED);
  return (
    <section className="card" aria-labelledby="partial-output-title">
      <h2 id="partial-output-title">{live ? 'Live output' : 'Streamed output'}</h2>
      {stream.progress !== null && (
        <div className="progress-row">
          <progress max={1} value={stream.progress} aria-label="Progress" />
          <span>{Math.round(stream.progress * 100)} %</span>
        </div>
      )}
      {stream.progressMessage && <p className="muted">{stream.progressMessage}</p>}
      {stream.cutNotice && (
        <p className="muted small" role="note" data-testid="stream-cut">
          Earlier output is gone: {stream.cutNotice}.
        </p>
      )}
      {stream.partialsDropped > 0 && (
        <p className="muted small" role="note">
          The first {formatNumber(stream.partialsDropped)} pieces are not shown: this page keeps the newest {formatNumber(stream.partials.length)}.
        </p>
      )}
      {stream.partials.length > 0 &&
        (text !== null ? (
          <pre className="stream-text" aria-live="polite" data-testid="stream-text">
            {text}
          </pre>
        ) : (
          <>
            {listed.length < stream.partials.length && (
              <p className="muted small">
                The newest {formatNumber(listed.length)} of {formatNumber(stream.partials.length)} pieces:
              </p>
            )}
            <ol className="partials">
              {listed.map((p) => (
                <li key={p.seq}>
                  <code>{JSON.stringify(p.data)}</code>
                </li>
              ))}
            </ol>
          </>
        ))}
    </section>
  );
}
