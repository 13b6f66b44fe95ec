// Editing an agent's definition: retry policy, timeout, concurrency, fallback and the rest.
import { useId, useState, type FormEvent } from 'react';
import type { Agent, AgentKind, AgentSpec } from '@/shared/api/types';
import { ErrorAlert } from '@/shared/ui/Feedback';

const KINDS: AgentKind[] = ['echo', 'sleep', 'fail', 'http'];

interface Draft {
  name: string;
  kind: AgentKind;
  description: string;
  maxAttempts: string;
  baseMs: string;
  capMs: string;
  timeoutMs: string;
  concurrency: string;
  cacheTtlMs: string;
  fallback: string;
  priority: string;
  config: string;
  inputSchema: string;
  concurrencyKey: string;
  concurrencyPerKey: string;
  rateLimit: string;
  ratePeriodS: string;
  rateKey: string;
}

function draftOf(spec: AgentSpec | null): Draft {
  return {
    name: spec?.name ?? '',
    kind: spec?.kind ?? 'echo',
    description: spec?.description ?? '',
    maxAttempts: String(spec?.retry?.max_attempts ?? 5),
    baseMs: String(spec?.retry?.base_ms ?? 200),
    capMs: String(spec?.retry?.cap_ms ?? 30000),
    timeoutMs: String(spec?.timeout_ms ?? 60000),
    concurrency: spec?.concurrency == null ? '' : String(spec.concurrency),
    cacheTtlMs: spec?.cache_ttl_ms == null ? '' : String(spec.cache_ttl_ms),
    fallback: spec?.fallback ?? '',
    priority: String(spec?.priority ?? 0),
    config: JSON.stringify(spec?.config ?? {}, null, 2),
    inputSchema: spec?.input_schema == null ? '' : JSON.stringify(spec.input_schema, null, 2),
    concurrencyKey: spec?.concurrency_key ?? '',
    concurrencyPerKey: spec?.concurrency_per_key == null ? '' : String(spec.concurrency_per_key),
    rateLimit: spec?.rate_limit == null ? '' : String(spec.rate_limit.limit),
    ratePeriodS: spec?.rate_limit == null ? '' : String(spec.rate_limit.period_s),
    rateKey: spec?.rate_limit?.key ?? '',
  };
}

type Errors = Partial<Record<keyof Draft, string>>;

function wholeNumber(text: string, errors: Errors, key: keyof Draft, { min = 0, optional = false } = {}): number | null | undefined {
  if (text.trim() === '') {
    if (!optional) errors[key] = 'is required';
    return null;
  }
  const n = Number(text);
  if (!Number.isInteger(n)) {
    errors[key] = 'must be a whole number';
    return undefined;
  }
  if (n < min) {
    errors[key] = `must be at least ${min}`;
    return undefined;
  }
  return n;
}

function jsonValue(text: string, errors: Errors, key: keyof Draft, optional: boolean): unknown {
  if (text.trim() === '') {
    if (!optional) errors[key] = 'is required';
    return null;
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) errors[key] = 'must be a JSON object';
    return v;
  } catch (e) {
    errors[key] = `is not valid JSON: ${(e as Error).message}`;
    return undefined;
  }
}

/** A JSON pointer into the task input (`/customer_id`); empty text is no pointer. */
function pointer(text: string, errors: Errors, key: keyof Draft): string | null {
  const t = text.trim();
  if (t === '') return null;
  if (!t.startsWith('/')) errors[key] = 'must be a JSON pointer starting with /, e.g. /customer_id';
  return t;
}

export function parseDraft(d: Draft, base: AgentSpec | null): { spec: AgentSpec | null; errors: Errors } {
  const errors: Errors = {};
  if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(d.name)) errors.name = 'use 1–64 of a-z 0-9 _ - ., starting with a letter or digit';
  const maxAttempts = wholeNumber(d.maxAttempts, errors, 'maxAttempts', { min: 1 });
  const baseMs = wholeNumber(d.baseMs, errors, 'baseMs');
  const capMs = wholeNumber(d.capMs, errors, 'capMs');
  if (typeof baseMs === 'number' && typeof capMs === 'number' && capMs < baseMs) errors.capMs = 'must not be below the base delay';
  const timeoutMs = wholeNumber(d.timeoutMs, errors, 'timeoutMs', { min: 1 });
  const concurrency = wholeNumber(d.concurrency, errors, 'concurrency', { min: 1, optional: true });
  const cacheTtlMs = wholeNumber(d.cacheTtlMs, errors, 'cacheTtlMs', { min: 1, optional: true });
  const priority = Number.isInteger(Number(d.priority)) && d.priority.trim() !== '' ? Number(d.priority) : ((errors.priority = 'must be a whole number'), 0);
  if (d.fallback && d.fallback === d.name) errors.fallback = 'an agent cannot fall back to itself';
  const config = jsonValue(d.config, errors, 'config', true);
  const inputSchema = jsonValue(d.inputSchema, errors, 'inputSchema', true);
  const concurrencyKey = pointer(d.concurrencyKey, errors, 'concurrencyKey');
  const concurrencyPerKey = wholeNumber(d.concurrencyPerKey, errors, 'concurrencyPerKey', { min: 1, optional: true });
  const rateLimit = wholeNumber(d.rateLimit, errors, 'rateLimit', { min: 1, optional: true });
  const ratePeriodS = wholeNumber(d.ratePeriodS, errors, 'ratePeriodS', { min: 1, optional: true });
  const rateKey = pointer(d.rateKey, errors, 'rateKey');
  if (rateLimit != null && ratePeriodS == null && !errors.ratePeriodS) errors.ratePeriodS = 'is required with a rate limit';
  if (ratePeriodS != null && rateLimit == null && !errors.rateLimit) errors.rateLimit = 'is required with a period';
  if (rateKey !== null && rateLimit == null && ratePeriodS == null && !errors.rateLimit) errors.rateLimit = 'is required with a rate limit key';
  // A task has one flow key: a per-key rate limit reads the same pointer as the concurrency key.
  if (rateKey !== null && concurrencyKey !== null && rateKey !== concurrencyKey && !errors.rateKey) errors.rateKey = `must be the concurrency key (${concurrencyKey}) or empty`;
  if (Object.keys(errors).length > 0) return { spec: null, errors };
  // Flow control left empty is left out of the body (not sent as null).
  const rest: AgentSpec = { ...(base ?? ({} as AgentSpec)) };
  delete rest.concurrency_key;
  delete rest.concurrency_per_key;
  delete rest.rate_limit;
  return {
    spec: {
      ...rest,
      name: d.name,
      kind: d.kind,
      description: d.description.trim() || null,
      retry: { max_attempts: maxAttempts!, base_ms: baseMs!, cap_ms: capMs! },
      timeout_ms: timeoutMs!,
      concurrency: concurrency ?? null,
      cache_ttl_ms: cacheTtlMs ?? null,
      fallback: d.fallback || null,
      priority,
      config: (config ?? {}) as Record<string, unknown>,
      input_schema: (inputSchema ?? null) as Record<string, unknown> | null,
      ...(concurrencyKey !== null ? { concurrency_key: concurrencyKey } : {}),
      ...(concurrencyPerKey != null ? { concurrency_per_key: concurrencyPerKey } : {}),
      ...(rateLimit != null && ratePeriodS != null ? { rate_limit: { limit: rateLimit, period_s: ratePeriodS, ...(rateKey !== null ? { key: rateKey } : {}) } } : {}),
    },
    errors,
  };
}

export function AgentForm({
  initial,
  agents,
  onSubmit,
  submitting,
  error,
  creating,
}: {
  initial: AgentSpec | null;
  agents: Agent[];
  onSubmit: (spec: AgentSpec) => void;
  submitting: boolean;
  error: unknown;
  creating: boolean;
}) {
  const id = useId();
  const [draft, setDraft] = useState(() => draftOf(initial));
  const [errors, setErrors] = useState<Errors>({});
  const set = (key: keyof Draft) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [key]: e.target.value }));

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const { spec, errors } = parseDraft(draft, initial);
    setErrors(errors);
    if (spec) onSubmit(spec);
  };

  const field = (key: keyof Draft, label: string, opts: { hint?: string; type?: string; disabled?: boolean; placeholder?: string } = {}) => (
    <div className={`field${errors[key] ? ' has-error' : ''}`}>
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        type={opts.type ?? 'text'}
        inputMode={opts.type === 'number' ? 'numeric' : undefined}
        value={draft[key]}
        onChange={set(key)}
        disabled={opts.disabled || submitting}
        placeholder={opts.placeholder}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={[opts.hint ? `${id}-${key}-hint` : '', errors[key] ? `${id}-${key}-err` : ''].filter(Boolean).join(' ') || undefined}
      />
      {opts.hint && (
        <p className="hint" id={`${id}-${key}-hint`}>
          {opts.hint}
        </p>
      )}
      {errors[key] && (
        <p className="field-errors" id={`${id}-${key}-err`}>
          {errors[key]}
        </p>
      )}
    </div>
  );

  return (
    <form className="card form" onSubmit={submit} noValidate>
      <div className="fields fields-row">
        {field('name', 'Name', { disabled: !creating, hint: creating ? 'a-z 0-9 _ - . (cannot be changed later)' : undefined })}
        <div className="field">
          <label htmlFor={`${id}-kind`}>Kind</label>
          <select id={`${id}-kind`} value={draft.kind} onChange={set('kind')} disabled={!creating || submitting}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
      </div>
      {field('description', 'Description')}
      <fieldset className="fieldset">
        <legend>Retry policy</legend>
        <div className="fields fields-row">
          {field('maxAttempts', 'Attempts in total', { type: 'number', hint: '1 means never retry.' })}
          {field('baseMs', 'Backoff base (ms)', { type: 'number' })}
          {field('capMs', 'Backoff cap (ms)', { type: 'number', hint: 'Delay = random(0, min(cap, base · 2^attempt)).' })}
        </div>
      </fieldset>
      <div className="fields fields-row">
        {field('timeoutMs', 'Timeout per attempt (ms)', { type: 'number' })}
        {field('concurrency', 'Concurrency limit', { type: 'number', hint: 'Empty: no limit.', placeholder: 'no limit' })}
        {field('cacheTtlMs', 'Result cache (ms)', { type: 'number', hint: 'Empty: no caching.', placeholder: 'off' })}
        {field('priority', 'Default priority', { type: 'number' })}
      </div>
      <fieldset className="fieldset">
        <legend>Flow control</legend>
        <div className="fields fields-row">
          {field('concurrencyKey', 'Concurrency key', {
            placeholder: '/customer_id',
            hint: 'A JSON pointer into the task input, e.g. /customer_id. Tasks with the same value share the per-key limit and take turns fairly. Empty: none.',
          })}
          {field('concurrencyPerKey', 'Concurrency per key', { type: 'number', placeholder: 'no limit', hint: 'At most this many running tasks per key. Empty: no per-key limit.' })}
        </div>
        <div className="fields fields-row">
          {field('rateLimit', 'Rate limit (tasks)', { type: 'number', placeholder: 'no limit', hint: 'At most this many task starts per period. Empty: no rate limit.' })}
          {field('ratePeriodS', 'Rate period (s)', { type: 'number', placeholder: '60' })}
          {field('rateKey', 'Rate limit key', { placeholder: '/api_key_id', hint: 'Optional JSON pointer: a limit per value instead of per agent (the concurrency key, when there is one).' })}
        </div>
      </fieldset>
      <div className={`field${errors.fallback ? ' has-error' : ''}`}>
        <label htmlFor={`${id}-fallback`}>Fallback agent</label>
        <select id={`${id}-fallback`} value={draft.fallback} onChange={set('fallback')} disabled={submitting} aria-describedby={`${id}-fallback-hint`}>
          <option value="">None (failed tasks become dead letters)</option>
          {agents
            .filter((a) => a.name !== draft.name)
            .map((a) => (
              <option key={a.name} value={a.name}>
                {a.name}
              </option>
            ))}
        </select>
        <p className="hint" id={`${id}-fallback-hint`}>
          Takes over tasks that fail for good.
        </p>
        {errors.fallback && <p className="field-errors">{errors.fallback}</p>}
      </div>
      <details className="advanced" open={creating}>
        <summary>Configuration and input schema</summary>
        <div className={`field${errors.config ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-config`}>Configuration (JSON)</label>
          <textarea id={`${id}-config`} className="mono" rows={4} value={draft.config} onChange={set('config')} disabled={submitting} aria-describedby={`${id}-config-hint`} />
          <p className="hint" id={`${id}-config-hint`}>
            For <code>http</code>: {'{"url": "https://…", "headers": {…}}'}. Header values are write-only: they show
            as <code>***</code>, and leaving <code>***</code> keeps the stored value.
          </p>
          {errors.config && <p className="field-errors">{errors.config}</p>}
        </div>
        <div className={`field${errors.inputSchema ? ' has-error' : ''}`}>
          <label htmlFor={`${id}-schema`}>Input schema (JSON Schema 2020-12)</label>
          <textarea id={`${id}-schema`} className="mono" rows={8} value={draft.inputSchema} onChange={set('inputSchema')} disabled={submitting} placeholder="empty: any input" />
          {errors.inputSchema && <p className="field-errors">{errors.inputSchema}</p>}
        </div>
      </details>
      <ErrorAlert error={error} title="Not saved" />
      {Object.keys(errors).length > 0 && (
        <p className="field-errors" role="alert">
          Fix the marked fields first.
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={submitting}>
          {submitting ? 'Saving…' : creating ? 'Create agent' : 'Save changes'}
        </button>
      </div>
    </form>
  );
}
