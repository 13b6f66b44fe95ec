export { Client, isFinalEvent } from "./client.js";
export type { ClientOptions, SubmitOptions, BatchSubmitOptions, FollowOptions, Task, TaskEvent, TaskStatus, TaskErrorInfo, Attempt, Step } from "./client.js";
export { Worker } from "./worker.js";
export type { WorkerOptions, AgentOptions, RetryPolicy, TaskContext, Handler, LogLevel } from "./worker.js";
export {
  SwitchyardError,
  ConnectionError,
  TaskError,
  RetryableError,
  PermanentError,
  RateLimitedError,
} from "./errors.js";
export type { ErrorClass, Violation, RateLimitedOptions } from "./errors.js";
export { VERSION } from "./version.js";
