// The schedule form's draft ⇄ the API's ScheduleSpec, the cron presets and time zones it
// offers, and the server's answers (422 `invalid_schedule`, 404 unknown agent, 409 name taken)
// placed on the fields they are about.
import { apiErrorInfo } from '@/shared/api/errors';
import type { Schedule, ScheduleCatchup, ScheduleOverlap, ScheduleSpec } from '@/shared/api/types';

export const OVERLAPS: readonly ScheduleOverlap[] = ['allow', 'skip', 'cancel_previous'];
export const CATCHUPS: readonly ScheduleCatchup[] = ['none', 'latest', 'all'];

export const OVERLAP_LABELS: Record<ScheduleOverlap, string> = {
  allow: 'Allow: fire anyway',
  skip: 'Skip: fire nothing this time',
  cancel_previous: 'Cancel the unfinished run, then fire',
};

export const CATCHUP_LABELS: Record<ScheduleCatchup, string> = {
  none: 'None: go on from the next run',
  latest: 'Latest: fire the newest missed run once',
  all: 'All: fire every missed run',
};

export interface CronPreset {
  label: string;
  cron: string;
}

export const CRON_PRESETS: readonly CronPreset[] = [
  { label: 'Every minute', cron: '* * * * *' },
  { label: 'Hourly', cron: '0 * * * *' },
  { label: 'Daily at 02:00', cron: '0 2 * * *' },
  { label: 'Weekdays at 09:00', cron: '0 9 * * 1-5' },
  { label: 'Every 2 seconds', cron: '*/2 * * * * *' },
];

export const COMMON_TIME_ZONES: readonly string[] = [
  'UTC',
  'Europe/London',
  'Europe/Dublin',
  'Europe/Lisbon',
  'Europe/Paris',
  'Europe/Berlin',
  'Europe/Amsterdam',
  'Europe/Madrid',
  'Europe/Rome',
  'Europe/Stockholm',
  'Europe/Warsaw',
  'Europe/Athens',
  'Europe/Kyiv',
  'Europe/Istanbul',
  'Africa/Lagos',
  'Africa/Johannesburg',
  'Asia/Dubai',
  'Asia/Kolkata',
  'Asia/Singapore',
  'Asia/Shanghai',
  'Asia/Tokyo',
  'Asia/Seoul',
  'Australia/Sydney',
  'Pacific/Auckland',
  'America/Sao_Paulo',
  'America/New_York',
  'America/Toronto',
  'America/Chicago',
  'America/Denver',
  'America/Mexico_City',
  'America/Los_Angeles',
];

/** The common zones, with the browser's own first when it is not among them. */
export function timeZoneChoices(local = Intl.DateTimeFormat().resolvedOptions().timeZone): string[] {
  return local && !COMMON_TIME_ZONES.includes(local) ? [local, ...COMMON_TIME_ZONES] : [...COMMON_TIME_ZONES];
}

export interface ScheduleDraft {
  name: string;
  agent: string;
  /** The task input as a value (the JSON editor's), not text. */
  input: unknown;
  cron: string;
  timezone: string;
  overlap: ScheduleOverlap;
  catchup: ScheduleCatchup;
  paused: boolean;
}

export type ScheduleField = keyof ScheduleDraft;
export type ScheduleErrors = Partial<Record<ScheduleField | 'form', string>>;

export const EMPTY_DRAFT: ScheduleDraft = { name: '', agent: '', input: {}, cron: '', timezone: 'UTC', overlap: 'allow', catchup: 'none', paused: false };

export function draftOf(schedule: Schedule | null): ScheduleDraft {
  return schedule ? { name: schedule.name, ...specOf(schedule) } : EMPTY_DRAFT;
}

/** What `PUT /schedules/{name}` takes to keep a schedule as it is (the name is in the path). */
export function specOf(schedule: Schedule): Required<Omit<ScheduleSpec, 'name'>> {
  return {
    agent: schedule.agent,
    input: schedule.input ?? {},
    cron: schedule.cron,
    timezone: schedule.timezone,
    overlap: schedule.overlap,
    catchup: schedule.catchup,
    paused: schedule.paused,
  };
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/**
 * Turns the draft into a spec. Only what needs no server is checked here (name characters,
 * something chosen and typed); whether the cron and time zone are valid is the server's to say.
 */
export function specFromDraft(d: ScheduleDraft, creating: boolean): { spec: ScheduleSpec | null; errors: ScheduleErrors } {
  const errors: ScheduleErrors = {};
  const name = d.name.trim();
  if (creating && !NAME.test(name)) errors.name = 'use 1–64 of a-z 0-9 _ - ., starting with a letter or digit';
  if (!d.agent) errors.agent = 'choose an agent';
  const cron = d.cron.trim().replace(/\s+/g, ' ');
  if (!cron) errors.cron = 'is required';
  if (d.input === undefined) errors.input = 'is required (use {} for none)';
  else if (typeof d.input !== 'object' || d.input === null || Array.isArray(d.input)) errors.input = 'must be a JSON object';
  if (Object.keys(errors).length > 0) return { spec: null, errors };
  const spec: ScheduleSpec = {
    ...(creating ? { name } : {}),
    agent: d.agent,
    input: d.input as Record<string, unknown>,
    cron,
    timezone: d.timezone.trim() || 'UTC',
    overlap: d.overlap,
    catchup: d.catchup,
    paused: d.paused,
  };
  return { spec, errors };
}

/** Which field a server message is about, from the words in it. */
export function fieldOfProblem(message: string): ScheduleField | 'form' {
  const m = message.toLowerCase();
  if (m.includes('cron') || m.includes('expression')) return 'cron';
  if (m.includes('timezone') || m.includes('time zone')) return 'timezone';
  if (m.includes('overlap')) return 'overlap';
  if (m.includes('catchup') || m.includes('catch-up') || m.includes('catch up')) return 'catchup';
  if (m.includes('agent')) return 'agent';
  if (m.includes('name')) return 'name';
  if (m.includes('input')) return 'input';
  return 'form';
}

/**
 * The server's refusal on the fields it is about; null when it is about none of them (a 403, the
 * network, a server failure), for an error box instead.
 */
export function serverScheduleErrors(error: unknown): ScheduleErrors | null {
  const info = apiErrorInfo(error);
  if (!info || typeof info.status !== 'number') return null;
  let field: ScheduleField | 'form';
  if (info.status === 409) field = 'name';
  else if (info.status === 404 && /agent/i.test(info.message)) field = 'agent';
  else if (info.status === 422 || info.status === 400) field = fieldOfProblem(info.message);
  else return null;
  // Input violations go to the JSON editor; a message about nothing in particular stays general.
  if (field === 'input' && info.violations.length > 0) return null;
  return { [field]: info.message };
}
