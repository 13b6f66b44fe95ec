// Creating an alert rule (admins). The server's 422 problems appear under their fields.
import { useId, useState, type FormEvent } from 'react';
import { useListAgentsQuery } from '@/features/agents/agentsApi';
import { ErrorAlert } from '@/shared/ui/Feedback';
import type { AlertKind } from '@/shared/api/types';
import { useCreateAlertRuleMutation } from '../alertsApi';
import { ALERT_KINDS, EMPTY_DRAFT, KIND_LABELS, THRESHOLD_HINTS, serverRuleErrors, specFromDraft, type RuleDraft, type RuleErrors, type RuleField } from '../ruleForm';

export function AlertRuleForm() {
  const id = useId();
  const [draft, setDraft] = useState<RuleDraft>(EMPTY_DRAFT);
  const [localErrors, setLocalErrors] = useState<RuleErrors>({});
  const [done, setDone] = useState<string | null>(null);
  const [create, state] = useCreateAlertRuleMutation();
  const agents = useListAgentsQuery();
  const serverErrors = serverRuleErrors(state.error);
  const errors: RuleErrors = { ...serverErrors, ...localErrors };
  const busy = state.isLoading;

  const set = (key: RuleField) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [key]: e.target.value }));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    const { spec, errors } = specFromDraft(draft);
    setLocalErrors(errors);
    if (!spec) {
      state.reset();
      return;
    }
    try {
      const rule = await create(spec).unwrap();
      setDone(rule.name);
      setDraft(EMPTY_DRAFT);
      state.reset();
    } catch {
      // Shown on the fields or below.
    }
  };

  const describedBy = (key: RuleField, hint: boolean) =>
    [hint ? `${id}-${key}-hint` : '', errors[key] ? `${id}-${key}-err` : ''].filter(Boolean).join(' ') || undefined;

  const fieldErrors = (key: RuleField) =>
    errors[key] && (
      <ul className="field-errors" id={`${id}-${key}-err`}>
        {errors[key].map((m) => (
          <li key={m}>{m}</li>
        ))}
      </ul>
    );

  const input = (key: RuleField, label: string, opts: { hint?: string; type?: string; placeholder?: string; required?: boolean; step?: string } = {}) => (
    <div className={`field${errors[key] ? ' has-error' : ''}`}>
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        type={opts.type ?? 'text'}
        inputMode={opts.type === 'number' ? 'decimal' : undefined}
        step={opts.step}
        min={opts.type === 'number' ? 0 : undefined}
        value={draft[key]}
        onChange={set(key)}
        disabled={busy}
        required={opts.required}
        placeholder={opts.placeholder}
        autoComplete="off"
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={describedBy(key, !!opts.hint)}
      />
      {opts.hint && (
        <p className="hint" id={`${id}-${key}-hint`}>
          {opts.hint}
        </p>
      )}
      {fieldErrors(key)}
    </div>
  );

  // A validation failure is shown on the fields; anything else (403, network) as a box.
  const formError = serverErrors ? null : state.error;

  return (
    <form className="card form" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New alert rule</h2>
      <div className="fields fields-row">
        {input('name', 'Name', { required: true, placeholder: 'e.g. summarize failing' })}
        <div className="field">
          <label htmlFor={`${id}-kind`}>Kind</label>
          <select
            id={`${id}-kind`}
            value={draft.kind}
            disabled={busy}
            onChange={(e) => {
              const kind = e.target.value as AlertKind;
              setDraft((d) => ({ ...d, kind, threshold: kind === 'failure_rate' ? '0.05' : kind === 'no_worker' ? '0' : d.kind === 'failure_rate' ? '100' : d.threshold }));
            }}
          >
            {ALERT_KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
        </div>
        <div className={`field${errors.agent ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-agent`}>Agent</label>
          <select
            id={`${id}-agent`}
            value={draft.agent}
            onChange={set('agent')}
            disabled={busy}
            aria-invalid={errors.agent ? true : undefined}
            aria-describedby={describedBy('agent', true)}
          >
            <option value="">{draft.kind === 'no_worker' ? 'Choose an agent…' : 'All agents'}</option>
            {(agents.data?.items ?? []).map((a) => (
              <option key={a.name} value={a.name}>
                {a.name}
              </option>
            ))}
          </select>
          <p className="hint" id={`${id}-agent-hint`}>
            {draft.kind === 'no_worker' ? 'Required for this kind.' : 'Empty: every agent together.'}
          </p>
          {fieldErrors('agent')}
        </div>
      </div>
      <div className="fields fields-row">
        {input('threshold', 'Threshold', { type: 'number', step: 'any', required: true, hint: THRESHOLD_HINTS[draft.kind] })}
        {input('windowS', 'Window (s)', { type: 'number', step: '1', required: true, hint: 'How far back the value looks.' })}
        {input('forS', 'For (s)', { type: 'number', step: '1', hint: 'Breached this long before firing. 0: at once.' })}
      </div>
      {input('webhookUrl', 'Webhook URL', { type: 'url', placeholder: 'https://hooks.slack.com/services/…', hint: 'Optional. Gets a Slack-compatible POST when the rule fires and resolves.' })}
      {errors.form && (
        <div className="alert alert-error" role="alert">
          <strong>Not created: </strong>
          {errors.form.join('; ')}
        </div>
      )}
      {serverErrors && !errors.form && (
        <div className="alert alert-error" role="alert">
          <strong>Not created:</strong> check the fields marked above.
        </div>
      )}
      <ErrorAlert error={formError} title="Not created" />
      {done && (
        <div className="alert alert-success" role="status">
          Created rule {done}.
        </div>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create rule'}
        </button>
      </div>
    </form>
  );
}
