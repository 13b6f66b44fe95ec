export { Client, isFinalEvent } from "./client.js";
export type {
  ClientOptions,
  SubmitOptions,
  BatchSubmitOptions,
  FollowOptions,
  Task,
  TaskEvent,
  TaskStatus,
  TaskErrorInfo,
  TaskWait,
  SignalResult,
  Attempt,
  Step,
  Schedule,
  ScheduleRun,
  ScheduleTriggered,
  ScheduleOptions,
  ScheduleOverlap,
  ScheduleCatchup,
} from "./client.js";
export type { FileInfo, FilePage, ListFilesOptions, InputFile, UploadData } from "./files.js";
export { Worker } from "./worker.js";
export type {
  WorkerOptions,
  AgentOptions,
  RetryPolicy,
  TaskContext,
  Handler,
  LogLevel,
  WaitForSignalOptions,
  SpawnOptions,
  JoinOptions,
} from "./worker.js";
export {
  SwitchyardError,
  ConnectionError,
  TaskError,
  RetryableError,
  PermanentError,
  RateLimitedError,
  WaitTimeoutError,
  ChildFailure,
  ChildTaskFailed,
} from "./errors.js";
export type { ErrorClass, Violation, RateLimitedOptions, ChildFailureStatus } from "./errors.js";
export { VERSION } from "./version.js";
