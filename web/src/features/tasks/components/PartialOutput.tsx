// Output streamed before the result (e.g. LLM tokens). Text pieces are joined as they arrive;
// anything else is listed as JSON.
import type { TaskStream } from '../tasksApi';

function textOf(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (typeof data === 'object' && data !== null) {
    for (const key of ['text', 'token', 'delta', 'content']) {
      const v = (data as Record<string, unknown>)[key];
      if (typeof v === 'string') return v;
    }
  }
  return null;
}

export function PartialOutput({ stream }: { stream: TaskStream | undefined }) {
  if (!stream || (stream.partials.length === 0 && stream.progress === null && !stream.progressMessage)) return null;
  const texts = stream.partials.map((p) => textOf(p.data));
  const allText = texts.every((t) => t !== null);
  return (
    <section className="card" aria-label="Live output">
      <h2>Live output</h2>
      {stream.progress !== null && (
        <div className="progress-row">
          <progress max={1} value={stream.progress} aria-label="Progress" />
          <span>{Math.round(stream.progress * 100)} %</span>
        </div>
      )}
      {stream.progressMessage && <p className="muted">{stream.progressMessage}</p>}
      {stream.partials.length > 0 &&
        (allText ? (
          <pre className="stream-text" aria-live="polite">
            {texts.join('')}
          </pre>
        ) : (
          <ol className="partials">
            {stream.partials.map((p) => (
              <li key={p.seq}>
                <code>{JSON.stringify(p.data)}</code>
              </li>
            ))}
          </ol>
        ))}
    </section>
  );
}
