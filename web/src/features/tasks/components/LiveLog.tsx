// The task's log lines, growing live; keeps the newest line in view unless the reader scrolled up.
import { useEffect, useRef } from 'react';
import type { LogLine } from '@/shared/api/types';

export function LiveLog({ lines, live }: { lines: LogLine[]; live: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <div
      className="log"
      ref={ref}
      tabIndex={0}
      role="log"
      aria-live={live ? 'polite' : 'off'}
      aria-label="Task log"
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
    >
      {lines.length === 0 ? (
        <p className="muted">{live ? 'No log lines yet. New lines appear here as the agent writes them.' : 'This task wrote no log lines.'}</p>
      ) : (
        lines.map((l) => (
          <div key={l.seq} className={`log-line log-${l.level}`}>
            <span className="log-time">{new Date(l.at).toLocaleTimeString()}</span>
            <span className="log-attempt" title="Attempt">
              #{l.attempt}
            </span>
            <span className="log-level">{l.level}</span>
            <span className="log-message">{l.message}</span>
          </div>
        ))
      )}
    </div>
  );
}
