import { useCallback, useId, useMemo, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { useAppDispatch } from '@/app/hooks';
import { useListAgentsQuery } from '@/features/agents/agentsApi';
import { usePermissions } from '@/features/auth/permissions';
import { useFileUpload } from '@/features/files/filesApi';
import { apiErrorInfo, type Violation } from '@/shared/api/errors';
import type { Agent } from '@/shared/api/types';
import { localInputToIso, shortId } from '@/shared/lib/format';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { InlineText } from '@/shared/ui/InlineText';
import { SchemaForm, asSchema, initialValue, validate, type JsonSchema } from '@/shared/ui/schema-form';
import { RecentSubmissions } from '../components/RecentSubmissions';
import { useSubmitTaskMutation } from '../tasksApi';
import { submitted } from '../tasksUiSlice';

function schemaOf(agent: Agent): JsonSchema | null {
  const s = agent.input_schema;
  return s && typeof s === 'object' ? (s as JsonSchema) : null;
}

function startingInput(agent: Agent): unknown {
  const v = initialValue(asSchema(schemaOf(agent) ?? {}));
  return v === undefined ? {} : v;
}

/** The input form for one agent; a new agent gets a fresh form with its defaults. */
function SubmitForm({ agent }: { agent: Agent }) {
  const id = useId();
  const dispatch = useAppDispatch();
  const schema = schemaOf(agent);
  const [input, setInput] = useState<unknown>(() => startingInput(agent));
  const [priority, setPriority] = useState('');
  const [runAt, setRunAt] = useState('');
  const [idempotencyKey, setIdempotencyKey] = useState('');
  const [violations, setViolations] = useState<Violation[]>([]);
  const [localErrors, setLocalErrors] = useState(0);
  const [submit, submitState] = useSubmitTaskMutation();
  const [lastSubmitted, setLastSubmitted] = useState<string | null>(null);
  const uploadFile = useFileUpload();

  const serverError = useMemo(() => {
    const info = apiErrorInfo(submitState.error);
    return info && info.violations.length === 0 ? submitState.error : null;
  }, [submitState.error]);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const own = schema ? validate(asSchema(schema), input) : [];
    if (typeof input !== 'object' || input === null || Array.isArray(input)) own.push({ path: '', keyword: 'type', message: 'The input must be a JSON object.' });
    setViolations(own);
    if (own.length > 0 || localErrors > 0) return;
    const p = priority.trim() === '' ? undefined : Number(priority);
    try {
      const task = await submit({
        agent: agent.name,
        input: input as Record<string, unknown>,
        ...(p !== undefined && Number.isInteger(p) ? { priority: p } : {}),
        ...(runAt ? { run_at: localInputToIso(runAt) } : {}),
        ...(idempotencyKey.trim() ? { idempotency_key: idempotencyKey.trim() } : {}),
      }).unwrap();
      dispatch(submitted(task.id));
      setLastSubmitted(task.id);
    } catch (err) {
      setViolations(apiErrorInfo(err)?.violations ?? []);
    }
  };

  return (
    <>
      {agent.description && (
        <p className="muted">
          <InlineText text={agent.description} />
        </p>
      )}
      <SchemaForm
        schema={schema}
        value={input}
        onChange={setInput}
        violations={violations}
        onLocalErrors={setLocalErrors}
        disabled={submitState.isLoading}
        uploadFile={uploadFile}
      />
      <details className="advanced">
        <summary>Scheduling and options</summary>
        <div className="fields fields-row">
          <div className="field">
            <label htmlFor={`${id}-priority`}>Priority</label>
            <input
              id={`${id}-priority`}
              type="number"
              step={1}
              value={priority}
              placeholder={String(agent.priority ?? 0)}
              onChange={(e) => setPriority(e.target.value)}
              aria-describedby={`${id}-priority-hint`}
            />
            <p className="hint" id={`${id}-priority-hint`}>
              Higher runs first. Default {agent.priority ?? 0}.
            </p>
          </div>
          <div className="field">
            <label htmlFor={`${id}-runat`}>Run at</label>
            <input id={`${id}-runat`} type="datetime-local" value={runAt} onChange={(e) => setRunAt(e.target.value)} aria-describedby={`${id}-runat-hint`} />
            <p className="hint" id={`${id}-runat-hint`}>
              Leave empty to run now.
            </p>
          </div>
          <div className="field">
            <label htmlFor={`${id}-idem`}>Idempotency key</label>
            <input id={`${id}-idem`} value={idempotencyKey} onChange={(e) => setIdempotencyKey(e.target.value)} aria-describedby={`${id}-idem-hint`} />
            <p className="hint" id={`${id}-idem-hint`}>
              Submitting again with the same key returns the first task.
            </p>
          </div>
        </div>
      </details>
      <ErrorAlert error={serverError} title="The task was not submitted" />
      {violations.length > 0 && (
        <p className="field-errors" role="alert">
          {submitState.error ? 'The server did not accept the input: see the marked fields.' : 'Fix the marked fields first.'}
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={submitState.isLoading} onClick={onSubmit}>
          {submitState.isLoading ? 'Submitting…' : 'Submit task'}
        </button>
        <button
          type="button"
          className="btn"
          onClick={() => {
            setInput(startingInput(agent));
            setViolations([]);
          }}
          disabled={submitState.isLoading}
        >
          Reset to defaults
        </button>
        {lastSubmitted && (
          <span role="status" className="muted">
            Submitted{' '}
            <Link to={`/tasks/${lastSubmitted}`} className="mono">
              {shortId(lastSubmitted)}
            </Link>
            .
          </span>
        )}
      </div>
    </>
  );
}

export function SubmitTaskPage() {
  const id = useId();
  const can = usePermissions();
  const [params, setParams] = useSearchParams();
  const agents = useListAgentsQuery();
  const agentName = params.get('agent') ?? '';
  const agent = agents.data?.items.find((a) => a.name === agentName);
  const chooseAgent = useCallback((name: string) => setParams(name ? { agent: name } : {}, { replace: true }), [setParams]);

  if (!can.canSubmit && can.role !== null) {
    return (
      <>
        <PageHeader title="Submit a task" />
        <div className="alert alert-info">Your role ({can.role}) can look at tasks but not submit them. Ask an admin for the operator role.</div>
      </>
    );
  }

  return (
    <>
      <PageHeader title="Submit a task" description="Pick an agent and fill in its input. The form follows the agent's input schema." />
      {agents.error ? (
        <ErrorAlert error={agents.error} title="Could not load agents" onRetry={agents.refetch} />
      ) : agents.isLoading ? (
        <Loading label="Loading agents…" />
      ) : agents.data?.items.length === 0 ? (
        <EmptyState title="There are no agents to submit to." />
      ) : (
        <form className="card form" noValidate aria-label="Submit a task" onSubmit={(e) => e.preventDefault()}>
          <div className="field">
            <label htmlFor={`${id}-agent`}>
              Agent<span className="required" aria-hidden="true"> *</span>
            </label>
            <select id={`${id}-agent`} value={agentName} onChange={(e) => chooseAgent(e.target.value)} required aria-required>
              <option value="">— choose an agent —</option>
              {agents.data?.items.map((a) => (
                <option key={a.name} value={a.name}>
                  {a.name}
                </option>
              ))}
            </select>
            {agentName && !agent && <p className="field-errors">There is no agent called “{agentName}”.</p>}
          </div>
          {agent && <SubmitForm key={`${agent.name}@${agent.updated_at}`} agent={agent} />}
        </form>
      )}
      <RecentSubmissions />
    </>
  );
}
