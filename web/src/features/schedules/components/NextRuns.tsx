// A list of upcoming fire times, in words and on the schedule's clock.
import { RunTime } from './RunTime';

export function NextRuns({ runs, timeZone, label }: { runs: readonly string[]; timeZone: string; label: string }) {
  return (
    <ol className="next-runs" aria-label={label}>
      {runs.map((iso) => (
        <li key={iso}>
          <RunTime iso={iso} timeZone={timeZone} />
        </li>
      ))}
    </ol>
  );
}
