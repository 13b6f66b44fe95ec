// Editing an agent's definition: retry policy, timeout, concurrency, fallback and the rest.
import { useId, useState, type FormEvent, type ReactNode } from 'react';
import type { Agent, AgentKind, AgentSpec } from '@/shared/api/types';
import { ErrorAlert } from '@/shared/ui/Feedback';

const KINDS: AgentKind[] = ['echo', 'sleep', 'fail', 'http', 'llm', 'command'];
/** A command agent runs a program on the server's machine: only admins may create or change one. */
const ADMIN_ONLY_KINDS: AgentKind[] = ['command'];
const ERROR_CLASSES = ['retryable', 'permanent', 'rate_limited'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
  // A command agent's settings, as text (kind `command` only).
  program: string;
  /** One argument per line. */
  args: string;
  cwd: string;
  /** `NAME=value` per line; stored values read `***` (write-only). */
  env: string;
  /** Variable names, one per line or separated by spaces or commas. */
  passEnv: string;
  maxOutputBytes: string;
  /** `STATUS=class` per line. */
  exitCodes: string;
  // An llm agent's settings, as text (kind `llm` only).
  baseUrl: string;
  model: string;
  apiKeyEnv: string;
  system: string;
  prompt: string;
  temperature: string;
  maxTokens: string;
  /** A JSON Schema, as JSON text. */
  responseFormat: string;
  /** Agent names, one per line or separated by spaces or commas. */
  tools: string;
  maxTurns: string;
  pricePrompt: string;
  priceCompletion: string;
}

interface CommandConfig {
  program?: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
  pass_env?: string[];
  max_output_bytes?: number;
  exit_codes?: Record<string, string>;
}

/** An llm agent's `config` (docs/agents.md). The API key is not in it: only the name of the server's variable that holds it. */
interface LlmConfig {
  base_url?: string;
  model?: string;
  api_key_env?: string;
  system?: string;
  prompt?: string;
  temperature?: number;
  max_tokens?: number;
  response_format?: Record<string, unknown>;
  tools?: string[];
  max_turns?: number;
  price_per_1k_tokens?: { prompt?: number; completion?: number };
}

function draftOf(spec: AgentSpec | null): Draft {
  const command: CommandConfig = spec?.kind === 'command' ? ((spec.config ?? {}) as CommandConfig) : {};
  const llm: LlmConfig = spec?.kind === 'llm' ? ((spec.config ?? {}) as LlmConfig) : {};
  const text = (v: number | undefined) => (v == null ? '' : String(v));
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
    program: command.program ?? '',
    args: (command.args ?? []).join('\n'),
    cwd: command.cwd ?? '',
    env: Object.entries(command.env ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    passEnv: (command.pass_env ?? []).join('\n'),
    maxOutputBytes: command.max_output_bytes == null ? '' : String(command.max_output_bytes),
    exitCodes: Object.entries(command.exit_codes ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    baseUrl: llm.base_url ?? '',
    model: llm.model ?? '',
    apiKeyEnv: llm.api_key_env ?? '',
    system: llm.system ?? '',
    prompt: llm.prompt ?? '',
    temperature: text(llm.temperature),
    maxTokens: text(llm.max_tokens),
    responseFormat: llm.response_format == null ? '' : JSON.stringify(llm.response_format, null, 2),
    tools: (llm.tools ?? []).join('\n'),
    maxTurns: text(llm.max_turns),
    pricePrompt: text(llm.price_per_1k_tokens?.prompt),
    priceCompletion: text(llm.price_per_1k_tokens?.completion),
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

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** A command agent's `config` from its fields. Arguments keep their spaces; blank lines are skipped. */
function commandConfig(d: Draft, errors: Errors): CommandConfig {
  const config: CommandConfig = {};
  const program = d.program.trim();
  if (program === '') errors.program = 'is required';
  else if (!program.startsWith('/')) errors.program = 'must be an absolute path, e.g. /usr/bin/python3 (there is no PATH lookup)';
  config.program = program;
  const args = d.args
    .split('\n')
    .map((a) => a.replace(/\r$/, ''))
    .filter((a) => a.trim() !== '');
  if (args.length > 0) config.args = args;
  const cwd = d.cwd.trim();
  if (cwd !== '' && !cwd.startsWith('/')) errors.cwd = 'must be an absolute path';
  if (cwd !== '') config.cwd = cwd;
  const env: Record<string, string> = {};
  // Values are kept as typed (a secret may end in a space); only blank lines are skipped.
  for (const line of d.env
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '')) {
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (eq < 0 || !ENV_NAME.test(name)) {
      errors.env = `write NAME=value lines; ${JSON.stringify(line)} is not one`;
      break;
    }
    env[name] = line.slice(eq + 1);
  }
  if (Object.keys(env).length > 0) config.env = env;
  const passEnv = d.passEnv.split(/[\s,]+/).filter((n) => n !== '');
  const badName = passEnv.find((n) => !ENV_NAME.test(n));
  if (badName !== undefined) errors.passEnv = `${JSON.stringify(badName)} is not a variable name`;
  if (passEnv.length > 0) config.pass_env = passEnv;
  const maxOutput = wholeNumber(d.maxOutputBytes, errors, 'maxOutputBytes', { min: 1, optional: true });
  if (maxOutput != null) config.max_output_bytes = maxOutput;
  const exitCodes: Record<string, string> = {};
  for (const line of lines(d.exitCodes)) {
    const [status = '', cls = ''] = line.split('=').map((p) => p.trim());
    const n = Number(status);
    if (!Number.isInteger(n) || n < 1 || n > 255 || String(n) !== status || !ERROR_CLASSES.includes(cls)) {
      errors.exitCodes = `write STATUS=class lines (1-255 = ${ERROR_CLASSES.join(', ')}); ${JSON.stringify(line)} is not one`;
      break;
    }
    exitCodes[status] = cls;
  }
  if (Object.keys(exitCodes).length > 0) config.exit_codes = exitCodes;
  return config;
}

/** The server's own settings live in variables named SWITCHYARD…: an agent may not read its key from one. */
const RESERVED_ENV_PREFIX = 'SWITCHYARD';
/** Limits the server checks too (crates/core/src/llm.rs). */
const LLM_LIMITS = { modelBytes: 256, maxTokens: 1_000_000, maxTurns: 50, tools: 128 };

/** An optional decimal number in a range; empty text is none. */
function decimal(text: string, errors: Errors, key: keyof Draft, { min = 0, max = Infinity } = {}): number | undefined {
  if (text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) errors[key] = 'must be a number';
  else if (n < min || n > max) errors[key] = max === Infinity ? `must be at least ${min}` : `must be between ${min} and ${max}`;
  return n;
}

/** An llm agent's `config` from its fields; what is left empty is left out. */
function llmConfig(d: Draft, errors: Errors): LlmConfig {
  const config: LlmConfig = {};
  const baseUrl = d.baseUrl.trim();
  let url: URL | null = null;
  try {
    url = baseUrl === '' ? null : new URL(baseUrl);
  } catch {
    url = null;
  }
  if (baseUrl === '') errors.baseUrl = 'is required';
  else if (!url || !['http:', 'https:'].includes(url.protocol) || url.hostname === '') errors.baseUrl = 'must be an http or https URL, e.g. https://api.openai.com/v1';
  config.base_url = baseUrl;
  const model = d.model.trim();
  if (model === '') errors.model = 'is required';
  else if (new TextEncoder().encode(model).length > LLM_LIMITS.modelBytes) errors.model = `must be at most ${LLM_LIMITS.modelBytes} bytes`;
  config.model = model;
  const keyEnv = d.apiKeyEnv.trim();
  if (keyEnv === '') errors.apiKeyEnv = 'is required';
  else if (!/^[A-Z_][A-Z0-9_]*$/.test(keyEnv)) errors.apiKeyEnv = 'must be a variable name of A-Z, 0-9 and _, e.g. OPENAI_API_KEY (the name, not the key)';
  else if (keyEnv.startsWith(RESERVED_ENV_PREFIX)) errors.apiKeyEnv = `may not start with ${RESERVED_ENV_PREFIX}: those variables hold the server's own settings`;
  config.api_key_env = keyEnv;
  // Texts are kept as typed: whitespace may matter to the model.
  if (d.system.trim() !== '') config.system = d.system;
  if (d.prompt.trim() !== '') config.prompt = d.prompt;
  const temperature = decimal(d.temperature, errors, 'temperature', { min: 0, max: 2 });
  if (temperature !== undefined) config.temperature = temperature;
  const maxTokens = wholeNumber(d.maxTokens, errors, 'maxTokens', { min: 1, optional: true });
  if (maxTokens != null && maxTokens > LLM_LIMITS.maxTokens) errors.maxTokens = `must be at most ${LLM_LIMITS.maxTokens.toLocaleString('en')}`;
  if (maxTokens != null) config.max_tokens = maxTokens;
  const responseFormat = jsonValue(d.responseFormat, errors, 'responseFormat', true);
  if (responseFormat != null) config.response_format = responseFormat as Record<string, unknown>;
  const tools = d.tools.split(/[\s,]+/).filter((t) => t !== '');
  // Agent names, less the dot: providers take function names of a-z 0-9 _ - only.
  const invalid = tools.find((t) => !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(t));
  const twice = tools.find((t, i) => tools.indexOf(t) !== i);
  if (invalid !== undefined) errors.tools = `${JSON.stringify(invalid)} is not the name of an agent a model can call (a-z 0-9 _ -)`;
  else if (twice !== undefined) errors.tools = `${JSON.stringify(twice)} is listed twice`;
  else if (tools.includes(d.name)) errors.tools = 'an agent cannot offer itself as a tool';
  else if (tools.length > LLM_LIMITS.tools) errors.tools = `may name at most ${LLM_LIMITS.tools} agents`;
  if (tools.length > 0) config.tools = tools;
  const maxTurns = wholeNumber(d.maxTurns, errors, 'maxTurns', { min: 1, optional: true });
  if (maxTurns != null && maxTurns > LLM_LIMITS.maxTurns) errors.maxTurns = `must be between 1 and ${LLM_LIMITS.maxTurns}`;
  if (maxTurns != null) config.max_turns = maxTurns;
  const pricePrompt = decimal(d.pricePrompt, errors, 'pricePrompt');
  const priceCompletion = decimal(d.priceCompletion, errors, 'priceCompletion');
  if (pricePrompt !== undefined || priceCompletion !== undefined) config.price_per_1k_tokens = { prompt: pricePrompt ?? 0, completion: priceCompletion ?? 0 };
  return config;
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
  const config =
    d.kind === 'command' ? commandConfig(d, errors) : d.kind === 'llm' ? llmConfig(d, errors) : jsonValue(d.config, errors, 'config', true);
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
  canManageCommandAgents,
}: {
  initial: AgentSpec | null;
  agents: Agent[];
  onSubmit: (spec: AgentSpec) => void;
  submitting: boolean;
  error: unknown;
  creating: boolean;
  /** Whether the admin-only kinds (`command`) are offered. */
  canManageCommandAgents: boolean;
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

  const kinds = KINDS.filter((k) => canManageCommandAgents || !ADMIN_ONLY_KINDS.includes(k) || k === draft.kind);
  // Tools are checked when the model calls them: a name that is not an agent yet is only pointed out.
  const known = new Set(agents.map((a) => a.name));
  const unknownTools = draft.tools.split(/[\s,]+/).filter((t) => t !== '' && !known.has(t));
  // Kinds whose config has fields of its own (not the JSON text).
  const hasConfigFields = draft.kind === 'command' || draft.kind === 'llm';

  // One field: its label, the control, its hint and its errors, tied together for screen readers.
  const describedBy = (key: keyof Draft, hint?: string) =>
    [hint ? `${id}-${key}-hint` : '', errors[key] ? `${id}-${key}-err` : ''].filter(Boolean).join(' ') || undefined;
  const frame = (key: keyof Draft, label: string, hint: string | undefined, control: ReactNode) => (
    <div className={`field${errors[key] ? ' has-error' : ''}`}>
      <label htmlFor={`${id}-${key}`}>{label}</label>
      {control}
      {hint && (
        <p className="hint" id={`${id}-${key}-hint`}>
          {hint}
        </p>
      )}
      {errors[key] && (
        <p className="field-errors" id={`${id}-${key}-err`}>
          {errors[key]}
        </p>
      )}
    </div>
  );

  const textarea = (key: keyof Draft, label: string, opts: { hint?: string; rows?: number; placeholder?: string } = {}) =>
    frame(
      key,
      label,
      opts.hint,
      <textarea
        id={`${id}-${key}`}
        className="mono"
        rows={opts.rows ?? 3}
        value={draft[key]}
        onChange={set(key)}
        disabled={submitting}
        placeholder={opts.placeholder}
        spellCheck={false}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={describedBy(key, opts.hint)}
      />,
    );

  const field = (key: keyof Draft, label: string, opts: { hint?: string; type?: string; disabled?: boolean; placeholder?: string } = {}) =>
    frame(
      key,
      label,
      opts.hint,
      <input
        id={`${id}-${key}`}
        type={opts.type ?? 'text'}
        inputMode={opts.type === 'number' ? 'numeric' : undefined}
        value={draft[key]}
        onChange={set(key)}
        disabled={opts.disabled || submitting}
        placeholder={opts.placeholder}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={describedBy(key, opts.hint)}
      />,
    );

  return (
    <form className="card form" onSubmit={submit} noValidate>
      <div className="fields fields-row">
        {field('name', 'Name', { disabled: !creating, hint: creating ? 'a-z 0-9 _ - . (cannot be changed later)' : undefined })}
        <div className="field">
          <label htmlFor={`${id}-kind`}>Kind</label>
          <select id={`${id}-kind`} value={draft.kind} onChange={set('kind')} disabled={!creating || submitting}>
            {kinds.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
      </div>
      {field('description', 'Description')}
      {draft.kind === 'command' && (
        <fieldset className="fieldset">
          <legend>Program</legend>
          <p className="hint">
            Runs on the server's machine as the server's user. The input JSON arrives on stdin; stdout is the output (its last JSON line, or the
            text); stderr lines are task logs (<code>::progress 0.5</code> and <code>::partial {'{…}'}</code> become events). Exit 0 succeeds,
            75 is retried, other statuses fail for good.
          </p>
          {field('program', 'Program', { placeholder: '/usr/bin/python3', hint: 'An absolute path; it is run directly, without a shell.' })}
          {textarea('args', 'Arguments (one per line)', {
            rows: 4,
            placeholder: 'script.py\n{{ input.path }}',
            hint: 'Each line is one argument, a template of the input: {{ input.path }}. A value the input lacks fails the task.',
          })}
          {field('cwd', 'Working directory', { placeholder: "the server's", hint: 'An absolute path. Empty: the server’s.' })}
          {textarea('env', 'Environment (NAME=value per line)', {
            placeholder: 'API_TOKEN=…',
            hint: 'Values are write-only: they show as ***, and leaving *** keeps the stored value.',
          })}
          <div className="fields fields-row">
            {field('passEnv', 'Variables passed on', { placeholder: 'PATH HOME', hint: "Names copied from the server's environment; nothing else of it reaches the program." })}
            {field('maxOutputBytes', 'Output limit (bytes)', { type: 'number', placeholder: '8388608', hint: 'Most bytes read from stdout. Empty: 8 MiB.' })}
          </div>
          {textarea('exitCodes', 'Exit statuses (STATUS=class per line)', {
            rows: 2,
            placeholder: '3=retryable',
            hint: 'retryable, permanent or rate_limited. Left out: 75 is retryable, any other status permanent.',
          })}
        </fieldset>
      )}
      {draft.kind === 'llm' && (
        <fieldset className="fieldset">
          <legend>Language model</legend>
          <p className="hint">
            Asks an OpenAI-compatible chat-completions API and streams the answer’s tokens to the task page. The output is{' '}
            <code>{'{"content", "finish_reason", "usage"}'}</code>.
          </p>
          <div className="fields fields-row">
            {field('baseUrl', 'API base URL', { placeholder: 'https://api.openai.com/v1', hint: 'Requests go to <base URL>/chat/completions.' })}
            {field('model', 'Model', { placeholder: 'gpt-4o-mini' })}
          </div>
          {field('apiKeyEnv', 'API key variable', {
            placeholder: 'OPENAI_API_KEY',
            hint: 'The name of an environment variable of the server that holds the key. The key itself is never stored, sent or shown here.',
          })}
          {textarea('system', 'System message', { rows: 3, placeholder: 'You are a careful assistant.' })}
          {textarea('prompt', 'Prompt template', {
            rows: 4,
            placeholder: 'Summarize in one sentence: {{ input.text }}',
            hint: 'The user message, a template of the input: {{ input.text }}. Used when the input has no messages (chat format).',
          })}
          <div className="fields fields-row">
            {field('temperature', 'Temperature', { placeholder: 'the model’s', hint: '0 to 2. Empty: the provider’s default.' })}
            {field('maxTokens', 'Most tokens in the answer', { type: 'number', placeholder: 'the model’s' })}
          </div>
          {textarea('responseFormat', 'Response format (JSON Schema)', {
            rows: 4,
            placeholder: '{"type": "object", "properties": {…}}',
            hint: 'Optional: the answer must be JSON of this schema; the output’s content is that JSON.',
          })}
          <div className="fields fields-row">
            {field('tools', 'Tools (agent names)', {
              placeholder: 'search_web lookup_order',
              hint:
                `Agents the model may call, each call a child task, separated by spaces or commas.` +
                (unknownTools.length > 0 ? ` Not an agent (yet): ${unknownTools.join(', ')}.` : ''),
            })}
            {field('maxTurns', 'Most model turns', { type: 'number', placeholder: '8', hint: 'A turn that calls tools is followed by another. Empty: 8.' })}
          </div>
          <div className="fields fields-row">
            {field('pricePrompt', 'Price per 1,000 prompt tokens', { placeholder: '0.00015' })}
            {field('priceCompletion', 'Price per 1,000 completion tokens', { placeholder: '0.0006', hint: 'Optional: with prices, each task’s usage has a cost, summed in the reports.' })}
          </div>
        </fieldset>
      )}
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
        <summary>{hasConfigFields ? 'Input schema' : 'Configuration and input schema'}</summary>
        {!hasConfigFields && (
          <div className={`field${errors.config ? ' has-error' : ''}`}>
            <label htmlFor={`${id}-config`}>Configuration (JSON)</label>
            <textarea id={`${id}-config`} className="mono" rows={4} value={draft.config} onChange={set('config')} disabled={submitting} aria-describedby={`${id}-config-hint`} />
            <p className="hint" id={`${id}-config-hint`}>
              For <code>http</code>: {'{"url": "https://…", "headers": {…}}'}. Header values are write-only: they show
              as <code>***</code>, and leaving <code>***</code> keeps the stored value.
            </p>
            {errors.config && <p className="field-errors">{errors.config}</p>}
          </div>
        )}
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
