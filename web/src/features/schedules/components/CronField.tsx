// The cron expression with a few presets, and below it the next runs as the server works
// them out (see useCronPreview). A cron the server cannot read shows its reason under the field.
import { knownTimeZone } from '@/shared/lib/format';
import { CRON_PRESETS } from '../scheduleForm';
import type { CronPreview } from '../useCronPreview';
import { NextRuns } from './NextRuns';

export function CronField({
  id,
  cron,
  timezone,
  preview,
  onChange,
  error,
  disabled,
}: {
  id: string;
  cron: string;
  timezone: string;
  preview: CronPreview;
  onChange: (cron: string) => void;
  /** The form's or the server's problem with it when saving. */
  error?: string;
  disabled?: boolean;
}) {
  const typed = cron.trim().replace(/\s+/g, ' ');
  const problems = [...new Set([error, preview.problem?.field === 'cron' ? preview.problem.message : undefined].filter((m): m is string => !!m))];
  const describedBy = [`${id}-hint`, problems.length > 0 ? `${id}-err` : '', `${id}-preview`].filter(Boolean).join(' ');
  const { runs } = preview;

  return (
    <div className={`field cron-field${problems.length > 0 ? ' has-error' : ''}`}>
      <label htmlFor={id}>
        Cron<span className="required" aria-hidden="true"> *</span>
      </label>
      <input
        id={id}
        className="mono"
        value={cron}
        onChange={(e) => onChange(e.target.value)}
        disabled={disabled}
        placeholder="0 2 * * *"
        autoComplete="off"
        spellCheck={false}
        aria-required
        aria-invalid={problems.length > 0 ? true : undefined}
        aria-describedby={describedBy}
      />
      <div className="cron-presets" role="group" aria-label="Common schedules">
        {CRON_PRESETS.map((p) => (
          <button key={p.cron} type="button" className="btn btn-small" aria-pressed={typed === p.cron} onClick={() => onChange(p.cron)} disabled={disabled} title={p.cron}>
            {p.label}
          </button>
        ))}
      </div>
      <p className="hint" id={`${id}-hint`}>
        Minute hour day-of-month month weekday, or six fields with seconds first (<code>*/2 * * * * *</code>: every 2 seconds).
      </p>
      {problems.length > 0 && (
        <ul className="field-errors" id={`${id}-err`}>
          {problems.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      )}
      <div className="cron-preview" id={`${id}-preview`} aria-live="polite">
        {runs && runs.length > 0 ? (
          <>
            <p className="hint">
              Next {runs.length} runs ({knownTimeZone(timezone.trim())}):
            </p>
            <NextRuns runs={runs} timeZone={timezone.trim()} label="Next runs" />
          </>
        ) : runs ? (
          <p className="hint">It never fires.</p>
        ) : preview.unavailable ? (
          <p className="hint">No preview: {preview.unavailable}</p>
        ) : preview.pending ? (
          <p className="hint">Working out the next runs…</p>
        ) : null}
      </div>
    </div>
  );
}
