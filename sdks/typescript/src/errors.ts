import type { TaskErrorInfo } from "./client.js";

/** An error the Switchyard server answered, or a refusal of this SDK's connection. */
export class SwitchyardError extends Error {
  /** Stable snake_case code (`unauthorized`, `validation_failed`, `unknown_agent`, …). */
  readonly code: string;
  /** HTTP status; `undefined` for errors sent over a WebSocket. */
  readonly status: number | undefined;
  /** Extra detail, e.g. `{ violations: [{ path, keyword, message }] }` for `validation_failed`. */
  readonly details: Record<string, unknown> | undefined;
  /** The server's request id, when it gave one (quote it when reporting a problem). */
  readonly requestId: string | undefined;

  constructor(
    code: string,
    message: string,
    options: { status?: number; details?: Record<string, unknown>; requestId?: string } = {},
  ) {
    super(message);
    this.name = "SwitchyardError";
    this.code = code;
    this.status = options.status;
    this.details = options.details;
    this.requestId = options.requestId;
  }

  /** `validation_failed` violations: one per field, with its JSON pointer. */
  get violations(): Violation[] {
    const v = this.details?.["violations"];
    return Array.isArray(v) ? (v as Violation[]) : [];
  }
}

export interface Violation {
  /** JSON pointer of the offending field, e.g. `/ms` (empty for the whole value). */
  path: string;
  keyword?: string;
  message: string;
  [key: string]: unknown;
}

/** The server could not be reached or the connection broke (the Worker retries these itself). */
export class ConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

export type ErrorClass = "retryable" | "permanent" | "rate_limited";

/** A classified failure of one attempt; throw one of its subclasses from a handler. */
export class TaskError extends Error {
  readonly errorClass: ErrorClass;
  /** A short machine-readable code, e.g. `upstream_busy`. */
  readonly code: string | undefined;

  constructor(errorClass: ErrorClass, message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TaskError";
    this.errorClass = errorClass;
    this.code = options.code;
  }
}

/** Worth retrying: the attempt is retried with backoff per the agent's retry policy. */
export class RetryableError extends TaskError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super("retryable", message, options);
    this.name = "RetryableError";
  }
}

/** Will fail the same way again (bad input): no retries, straight to the fallback or dead. */
export class PermanentError extends TaskError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super("permanent", message, options);
    this.name = "PermanentError";
  }
}

/** The downstream asked to slow down; the next attempt waits `retryAfter` seconds, if given. */
export class RateLimitedError extends TaskError {
  /** Seconds to wait before the next attempt. */
  readonly retryAfter: number | undefined;

  /**
   * `new RateLimitedError({ retryAfter: 2 })` or `new RateLimitedError("slow down", { retryAfter: 2 })`.
   */
  constructor(
    messageOrOptions: string | RateLimitedOptions = {},
    options: RateLimitedOptions = {},
  ) {
    const opts = typeof messageOrOptions === "string" ? options : messageOrOptions;
    const message = typeof messageOrOptions === "string" ? messageOrOptions : (opts.message ?? "rate limited");
    super("rate_limited", message, opts);
    this.name = "RateLimitedError";
    if (opts.retryAfter !== undefined && !(opts.retryAfter >= 0)) {
      throw new RangeError("retryAfter is in seconds and must be >= 0");
    }
    this.retryAfter = opts.retryAfter;
  }
}

export interface RateLimitedOptions {
  /** Seconds to wait before the next attempt. */
  retryAfter?: number;
  message?: string;
  code?: string;
  cause?: unknown;
}

/** Reads the server's `{"error":{code,message,request_id,details}}` body. */
export async function errorFromResponse(response: Response): Promise<SwitchyardError> {
  const text = await response.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const err = (body as { error?: Record<string, unknown> } | undefined)?.error;
  if (err && typeof err["code"] === "string") {
    const options: { status: number; details?: Record<string, unknown>; requestId?: string } = {
      status: response.status,
    };
    if (err["details"] && typeof err["details"] === "object") {
      options.details = err["details"] as Record<string, unknown>;
    }
    if (typeof err["request_id"] === "string") options.requestId = err["request_id"];
    return new SwitchyardError(err["code"], textOr(err["message"], err["code"]), options);
  }
  return new SwitchyardError(`http_${response.status}`, text || response.statusText || `HTTP ${response.status}`, {
    status: response.status,
  });
}

/** `value` when the server sent a string there, else `fallback` (never `[object Object]`). */
export function textOr(value: unknown, fallback: string): string {
  return typeof value === "string" ? value : fallback;
}

/**
 * A signal wait (`ctx.waitForSignal(name, { timeout })`) whose timeout passed before the signal
 * came. The handler may catch it and go on; left uncaught it fails the attempt permanently (code
 * `wait_timeout`): a later run would meet the same timed-out wait.
 */
export class WaitTimeoutError extends PermanentError {
  /** The signal's name, as given to `waitForSignal`. */
  readonly signal: string;

  constructor(signal: string) {
    super(`the wait for signal ${JSON.stringify(signal)} timed out`, { code: "wait_timeout" });
    this.name = "WaitTimeoutError";
    this.signal = signal;
  }
}

/** How a child task that did not succeed ended. */
export type ChildFailureStatus = "failed" | "dead" | "cancelled";

/**
 * A child task that did not succeed, as `ctx.join` returns it in place of the child's output
 * (a value, not thrown; see `ChildTaskFailed` for `{ raiseOnFailure: true }`).
 */
export class ChildFailure {
  constructor(
    /** The child task's id. */
    readonly taskId: string,
    /** How it ended: `failed`, `dead` or `cancelled`. */
    readonly status: ChildFailureStatus,
    /** Its error (`class`, `code`, `message`, …), as the server reports it; `null` if it has none. */
    readonly error: TaskErrorInfo | null,
  ) {}
}

/**
 * Thrown by `ctx.join(ids, { raiseOnFailure: true })` for the first child (in the order of `ids`)
 * that did not succeed. Left uncaught it fails the attempt permanently (code `child_failed`): the
 * join's result is stored, so a later run would meet the same failure.
 */
export class ChildTaskFailed extends PermanentError {
  /** The child that did not succeed. */
  readonly failure: ChildFailure;

  constructor(failure: ChildFailure) {
    const why = failure.error?.message ? `: ${failure.error.message}` : "";
    super(`child task ${failure.taskId} ended ${failure.status}${why}`, { code: "child_failed" });
    this.name = "ChildTaskFailed";
    this.failure = failure;
  }
}
