// Names for the generated OpenAPI types (schema.ts is generated: never edit it by hand).
import type { components } from './schema';

type Schemas = components['schemas'];

export type TaskStatus = Schemas['TaskStatus'];
export type AttemptStatus = Schemas['AttemptStatus'];
export type Attempt = Schemas['Attempt'];
export type Task = Schemas['Task'];
export type TaskError = Schemas['TaskError'];
export type TaskPage = Schemas['TaskPage'];
// `File` in the OpenAPI document; named FileView here so it does not hide the browser's File.
export type FileView = Schemas['File'];
export type FilePage = Schemas['FilePage'];
export type TaskWait = Schemas['Wait'];
export type WaitKind = Schemas['WaitKind'];
export type SignalSent = Schemas['SignalAccepted'];
// Task events are not part of the OpenAPI document.
export type ResumeReason = 'time' | 'signal' | 'children' | 'timeout';
export type SubmitBody = Schemas['SubmitBody'];
export type LogLine = Schemas['LogLine'];
export type LogLevel = Schemas['LogLevel'];
export type Step = Schemas['Step'];
export type StepStatus = Schemas['StepStatus'];
export type Agent = Schemas['Agent'];
export type AgentSpec = Schemas['AgentSpec'];
export type AgentKind = Schemas['AgentKind'];
export type RetryPolicy = Schemas['RetryPolicy'];
export type WorkerInfo = Schemas['WorkerInfo'];
export type QueueStats = Schemas['AgentQueueStats'];
export type ApiKey = Schemas['ApiKey'];
export type CreateKeyBody = Schemas['CreateKeyBody'];
export type CreatedKey = Schemas['CreatedKey'];
export type Scope = Schemas['Scope'];
export type TokenPair = Schemas['TokenPair'];
export type LoginOptions = Schemas['LoginOptions'];
export type Me = Schemas['Me'];
export type User = Schemas['User'];
export type Role = Schemas['Role'];
export type ErrorBody = Schemas['ErrorBody'];
export type CreateUserBody = Schemas['CreateUserBody'];
export type SessionView = Schemas['SessionView'];
export type UpdateUserBody = Schemas['UpdateUserBody'];
export type AuditEntry = Schemas['AuditEntry'];
export type AuditPage = Schemas['AuditPage'];
export type AuditOutcome = Schemas['AuditOutcome'];

export interface Items<T> {
  items: T[];
}

export const TASK_STATUSES: readonly TaskStatus[] = [
  'queued',
  'running',
  'waiting',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
  'dead',
];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'cancelled', 'dead']);

export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
export const SCOPES: readonly Scope[] = ['read', 'submit', 'worker', 'admin'];
export type MetricSeries = Schemas['Series'];
export type SeriesPoint = Schemas['SeriesPoint'];
export type AlertRule = Schemas['AlertRule'];
export type AlertRuleSpec = Schemas['AlertRuleSpec'];
export type AlertEvent = Schemas['AlertEvent'];
export type AgentReport = Schemas['AgentReport'];
export type Report = Schemas['Report'];
export type TaskTrace = Schemas['TaskTrace'];
export type AlertEventPage = Schemas['AlertEventPage'];
export type AlertKind = Schemas['AlertKind'];
export type AlertStatus = Schemas['AlertStatus'];
export type RateLimit = Schemas['RateLimit'];
export type Schedule = Schemas['Schedule'];
export type ScheduleSpec = Schemas['ScheduleSpec'];
export type ScheduleRun = Schemas['ScheduleRun'];
export type SchedulePreview = Schemas['SchedulePreview'];
export type ScheduleTriggered = Schemas['Triggered'];
export type ScheduleOverlap = Schemas['Overlap'];
export type ScheduleCatchup = Schemas['Catchup'];
