// Creating or editing a schedule: what to run (agent and input, in the same editor as the
// submit page), when (cron with presets and a preview, time zone), and what to do about overlaps
// and missed runs. The server's refusals land on the fields they are about.
import { useId, useMemo, useState, type FormEvent } from 'react';
import { useFileUpload } from '@/features/files/filesApi';
import { apiErrorInfo, type Violation } from '@/shared/api/errors';
import type { Agent, Schedule, ScheduleCatchup, ScheduleOverlap, ScheduleSpec } from '@/shared/api/types';
import { ErrorAlert } from '@/shared/ui/Feedback';
import { SchemaForm, asSchema, initialValue, validate, type JsonSchema } from '@/shared/ui/schema-form';
import {
  CATCHUP_LABELS,
  CATCHUPS,
  OVERLAP_LABELS,
  OVERLAPS,
  draftOf,
  serverScheduleErrors,
  specFromDraft,
  timeZoneChoices,
  type ScheduleDraft,
  type ScheduleErrors,
  type ScheduleField,
} from '../scheduleForm';
import { useCronPreview } from '../useCronPreview';
import { CronField } from './CronField';

function schemaOf(agent: Agent | undefined): JsonSchema | null {
  const s = agent?.input_schema;
  return s && typeof s === 'object' ? (s as JsonSchema) : null;
}

function startingInput(agent: Agent | undefined): unknown {
  const v = initialValue(asSchema(schemaOf(agent) ?? {}));
  return v === undefined ? {} : v;
}

function withoutFields(errors: ScheduleErrors | null, fields: readonly ScheduleField[]): ScheduleErrors | null {
  if (!errors || fields.length === 0) return errors;
  const rest = Object.fromEntries(Object.entries(errors).filter(([k]) => !fields.includes(k as ScheduleField))) as ScheduleErrors;
  return Object.keys(rest).length > 0 ? rest : null;
}

export function ScheduleForm({
  initial,
  agents,
  creating,
  submitting,
  error,
  onSubmit,
}: {
  initial: Schedule | null;
  agents: Agent[];
  creating: boolean;
  submitting: boolean;
  error: unknown;
  onSubmit: (spec: ScheduleSpec) => void;
}) {
  const id = useId();
  const [draft, setDraft] = useState<ScheduleDraft>(() => draftOf(initial));
  const [localErrors, setLocalErrors] = useState<ScheduleErrors>({});
  const [violations, setViolations] = useState<Violation[]>([]);
  const [inputTextErrors, setInputTextErrors] = useState(0);
  const uploadFile = useFileUpload();
  const zones = useMemo(() => timeZoneChoices(), []);
  const agent = agents.find((a) => a.name === draft.agent);
  const schema = schemaOf(agent);
  const preview = useCronPreview(draft.cron, draft.timezone);

  // A server refusal stays on its field until that field is edited.
  const [edited, setEdited] = useState<{ after: unknown; fields: ScheduleField[] }>({ after: null, fields: [] });
  const placed = serverScheduleErrors(error);
  const serverErrors = withoutFields(placed, edited.after === error ? edited.fields : []);
  const errors: ScheduleErrors = { ...serverErrors, ...localErrors };
  const serverViolations = apiErrorInfo(error)?.violations ?? [];
  const formError = placed || serverViolations.length > 0 ? null : error;

  const touch = (...fields: ScheduleField[]) => {
    setLocalErrors((e) => withoutFields(e, fields) ?? {});
    setEdited((prev) => ({ after: error, fields: prev.after === error ? [...prev.fields, ...fields] : fields }));
  };

  const set = <K extends ScheduleField>(key: K, value: ScheduleDraft[K]) => {
    setDraft((d) => ({ ...d, [key]: value }));
    touch(key);
  };

  const chooseAgent = (name: string) => {
    setDraft((d) => ({ ...d, agent: name, input: startingInput(agents.find((a) => a.name === name)) }));
    setViolations([]);
    touch('agent', 'input');
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const own = schema ? validate(asSchema(schema), draft.input) : [];
    setViolations(own);
    const { spec, errors } = specFromDraft(draft, creating);
    setLocalErrors(errors);
    if (!spec || own.length > 0 || inputTextErrors > 0) return;
    onSubmit(spec);
  };

  const describedBy = (key: ScheduleField, hint: boolean) => [hint ? `${id}-${key}-hint` : '', errors[key] ? `${id}-${key}-err` : ''].filter(Boolean).join(' ') || undefined;
  const fieldError = (key: ScheduleField) =>
    errors[key] && (
      <p className="field-errors" id={`${id}-${key}-err`}>
        {errors[key]}
      </p>
    );
  // The time zone is checked as it is typed, by the preview, and again when saving.
  const timezoneProblem = errors.timezone ?? (preview.problem?.field === 'timezone' ? preview.problem.message : undefined);
  const hasErrors = Object.values(errors).some(Boolean) || violations.length > 0;

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label={creating ? 'New schedule' : 'Edit schedule'}>
      <div className="fields fields-row">
        <div className={`field${errors.name ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-name`}>
            Name<span className="required" aria-hidden="true"> *</span>
          </label>
          <input
            id={`${id}-name`}
            value={draft.name}
            onChange={(e) => set('name', e.target.value)}
            disabled={!creating || submitting}
            placeholder="nightly-report"
            autoComplete="off"
            aria-invalid={errors.name ? true : undefined}
            aria-describedby={describedBy('name', creating)}
          />
          {creating && (
            <p className="hint" id={`${id}-name-hint`}>
              a-z 0-9 _ - . (cannot be changed later)
            </p>
          )}
          {fieldError('name')}
        </div>
        <div className={`field${errors.agent ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-agent`}>
            Agent<span className="required" aria-hidden="true"> *</span>
          </label>
          <select
            id={`${id}-agent`}
            value={draft.agent}
            onChange={(e) => chooseAgent(e.target.value)}
            disabled={submitting}
            aria-invalid={errors.agent ? true : undefined}
            aria-describedby={describedBy('agent', false)}
          >
            <option value="">— choose an agent —</option>
            {draft.agent && !agent && <option value={draft.agent}>{draft.agent}</option>}
            {agents.map((a) => (
              <option key={a.name} value={a.name}>
                {a.name}
              </option>
            ))}
          </select>
          {fieldError('agent')}
        </div>
      </div>
      {draft.agent && (
        <fieldset className={`fieldset${errors.input ? ' has-error' : ''}`}>
          <legend>Task input</legend>
          <SchemaForm
            key={draft.agent}
            schema={schema}
            value={draft.input}
            onChange={(v) => set('input', v)}
            violations={violations.length > 0 ? violations : serverViolations}
            onLocalErrors={setInputTextErrors}
            disabled={submitting}
            uploadFile={uploadFile}
          />
          {fieldError('input')}
        </fieldset>
      )}
      <fieldset className="fieldset">
        <legend>When</legend>
        <CronField id={`${id}-cron`} cron={draft.cron} timezone={draft.timezone} preview={preview} onChange={(v) => set('cron', v)} error={errors.cron} disabled={submitting} />
        <div className={`field${timezoneProblem ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-timezone`}>Time zone</label>
          <input
            id={`${id}-timezone`}
            list={`${id}-zones`}
            value={draft.timezone}
            onChange={(e) => set('timezone', e.target.value)}
            disabled={submitting}
            autoComplete="off"
            spellCheck={false}
            placeholder="UTC"
            aria-invalid={timezoneProblem ? true : undefined}
            aria-describedby={[`${id}-timezone-hint`, timezoneProblem ? `${id}-timezone-err` : ''].filter(Boolean).join(' ')}
          />
          <datalist id={`${id}-zones`}>
            {zones.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
          <p className="hint" id={`${id}-timezone-hint`}>
            An IANA name, e.g. Europe/Berlin. The cron's hours are in this zone (daylight saving included).
          </p>
          {timezoneProblem && (
            <p className="field-errors" id={`${id}-timezone-err`}>
              {timezoneProblem}
            </p>
          )}
        </div>
      </fieldset>
      <div className="fields fields-row">
        <div className={`field${errors.overlap ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-overlap`}>When the previous run is still going</label>
          <select id={`${id}-overlap`} value={draft.overlap} onChange={(e) => set('overlap', e.target.value as ScheduleOverlap)} disabled={submitting} aria-describedby={describedBy('overlap', true)}>
            {OVERLAPS.map((o) => (
              <option key={o} value={o}>
                {OVERLAP_LABELS[o]}
              </option>
            ))}
          </select>
          <p className="hint" id={`${id}-overlap-hint`}>
            When a run falls due while the task of the previous one is unfinished.
          </p>
          {fieldError('overlap')}
        </div>
        <div className={`field${errors.catchup ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-catchup`}>Missed runs</label>
          <select id={`${id}-catchup`} value={draft.catchup} onChange={(e) => set('catchup', e.target.value as ScheduleCatchup)} disabled={submitting} aria-describedby={describedBy('catchup', true)}>
            {CATCHUPS.map((c) => (
              <option key={c} value={c}>
                {CATCHUP_LABELS[c]}
              </option>
            ))}
          </select>
          <p className="hint" id={`${id}-catchup-hint`}>
            Runs that fell due while no server ran or the schedule was paused.
          </p>
          {fieldError('catchup')}
        </div>
      </div>
      <label className="check">
        <input type="checkbox" checked={draft.paused} onChange={(e) => set('paused', e.target.checked)} disabled={submitting} />
        Paused (fires nothing until resumed; Run now still works)
      </label>
      {errors.form && (
        <div className="alert alert-error" role="alert">
          <strong>Not saved: </strong>
          {errors.form}
        </div>
      )}
      <ErrorAlert error={formError} title="Not saved" />
      {hasErrors && !errors.form && (
        <p className="field-errors" role="alert">
          {error && (placed || serverViolations.length > 0) ? 'Not saved: check the fields marked above.' : 'Fix the marked fields first.'}
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={submitting}>
          {submitting ? 'Saving…' : creating ? 'Create schedule' : 'Save changes'}
        </button>
      </div>
    </form>
  );
}
