// The alert rule form's draft ⇄ the API's AlertRuleSpec, and the server's validation problems
// (422 `validation_failed`, `details.problems`: sentences naming the field) placed on fields.
import type { AlertKind, AlertRuleSpec } from '@/shared/api/types';

export const ALERT_KINDS: readonly AlertKind[] = ['failure_rate', 'queue_depth', 'oldest_task_age', 'no_worker', 'backup_age'];

export const KIND_LABELS: Record<AlertKind, string> = {
  failure_rate: 'Failure rate',
  queue_depth: 'Queue depth',
  oldest_task_age: 'Oldest task age',
  no_worker: 'No worker',
  backup_age: 'Backup age',
};

export const THRESHOLD_HINTS: Record<AlertKind, string> = {
  failure_rate: 'A fraction 0–1 of finished tasks that failed (0.05 = 5 %). Fires above it.',
  queue_depth: 'Tasks waiting (ready + scheduled). Fires above it.',
  oldest_task_age: 'Seconds the oldest runnable task has waited. Fires above it.',
  no_worker: 'Live workers serving the agent. Fires at or below it (0: none left).',
  backup_age: 'Seconds since the last successful backup (since the rule was made, if none). Fires above it.',
};

export interface RuleDraft {
  name: string;
  kind: AlertKind;
  agent: string;
  threshold: string;
  windowS: string;
  forS: string;
  webhookUrl: string;
}

export type RuleField = keyof RuleDraft;
export type RuleErrors = Partial<Record<RuleField | 'form', string[]>>;

export const EMPTY_DRAFT: RuleDraft = { name: '', kind: 'failure_rate', agent: '', threshold: '0.05', windowS: '300', forS: '0', webhookUrl: '' };

function add(errors: RuleErrors, field: RuleField | 'form', message: string) {
  (errors[field] ??= []).push(message);
}

function wholeNumber(text: string, errors: RuleErrors, field: RuleField): number {
  const t = text.trim();
  if (t === '') {
    add(errors, field, 'is required');
    return 0;
  }
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) add(errors, field, 'must be a whole number of seconds');
  return n;
}

/**
 * Turns the draft into a spec. Only what cannot be sent is checked here (numbers that are not
 * numbers); ranges and combinations are the server's to judge, and its answer lands on fields.
 */
export function specFromDraft(d: RuleDraft): { spec: AlertRuleSpec | null; errors: RuleErrors } {
  const errors: RuleErrors = {};
  const threshold = Number(d.threshold.trim());
  if (d.threshold.trim() === '') add(errors, 'threshold', 'is required');
  else if (!Number.isFinite(threshold)) add(errors, 'threshold', 'must be a number');
  const windowS = wholeNumber(d.windowS, errors, 'windowS');
  const forS = d.forS.trim() === '' ? 0 : wholeNumber(d.forS, errors, 'forS');
  if (Object.keys(errors).length > 0) return { spec: null, errors };
  const spec: AlertRuleSpec = { name: d.name.trim(), kind: d.kind, threshold, window_s: windowS, for_s: forS };
  if (d.agent.trim()) spec.agent = d.agent.trim();
  if (d.webhookUrl.trim()) spec.webhook_url = d.webhookUrl.trim();
  return { spec, errors };
}

/** Which field a server problem is about, from the words it starts with. */
export function fieldOfProblem(problem: string): RuleField | 'form' {
  const p = problem.toLowerCase();
  if (p.startsWith('name')) return 'name';
  if (p.startsWith('window_s')) return 'windowS';
  if (p.startsWith('for_s')) return 'forS';
  if (p.startsWith('webhook_url') || p.includes('webhook')) return 'webhookUrl';
  if (p.includes('threshold')) return 'threshold';
  if (p.startsWith('agent') || p.includes('needs an agent') || p.includes('agent ')) return 'agent';
  return 'form';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** The server's problems with a rule, by field; null when the error is not a validation failure. */
export function serverRuleErrors(error: unknown): RuleErrors | null {
  if (!isRecord(error) || !isRecord(error.data) || !isRecord(error.data.error)) return null;
  const body = error.data.error;
  const details = isRecord(body.details) ? body.details : null;
  const problems = Array.isArray(details?.problems) ? details.problems.filter((p): p is string => typeof p === 'string') : [];
  if (problems.length === 0) return null;
  const errors: RuleErrors = {};
  for (const p of problems) add(errors, fieldOfProblem(p), p);
  return errors;
}

/** How a rule's threshold reads for people, in the unit of its kind. */
export function formatThreshold(kind: AlertKind, value: number): string {
  switch (kind) {
    case 'failure_rate':
      return `> ${Number((value * 100).toFixed(2))} %`;
    case 'queue_depth':
      return `> ${value} tasks`;
    case 'oldest_task_age':
    case 'backup_age':
      return `> ${value} s`;
    case 'no_worker':
      return `≤ ${value} workers`;
  }
  return String(value);
}

/** An observed value in the unit of its kind. */
export function formatAlertValue(kind: AlertKind, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  switch (kind) {
    case 'failure_rate':
      return `${Number((value * 100).toFixed(1))} %`;
    case 'oldest_task_age':
    case 'backup_age':
      return `${Number(value.toFixed(1))} s`;
    default:
      return String(Number(value.toFixed(2)));
  }
}
