import type { TaskErrorInfo } from "./client.js";
import {
  ChildFailure,
  ChildTaskFailed,
  ConnectionError,
  PermanentError,
  SwitchyardError,
  TaskError,
  RateLimitedError,
  WaitTimeoutError,
  textOr,
  type ChildFailureStatus,
  type ErrorClass,
} from "./errors.js";
import { postUpload, readBytes, resolveUrl, send as sendRequest, uploadBody, writeTo, type InputFile, type UploadData } from "./files.js";
import { jitter, openSocket, sleep, wsUrl, type Socket } from "./socket.js";
import { VERSION } from "./version.js";

export type LogLevel = "debug" | "info" | "warn" | "error";

/** How an agent is declared in `hello` (registered as a `remote` agent, or updated). */
export interface AgentOptions {
  /** JSON Schema (2020-12) the input must satisfy; the server validates before queueing. */
  inputSchema?: Record<string, unknown>;
  /** JSON Schema the output must satisfy; a non-conforming output fails the attempt permanently. */
  outputSchema?: Record<string, unknown>;
  /** Per-attempt timeout in milliseconds. Left out, the agent keeps its own (60 s when new). */
  timeoutMs?: number;
  /** Retry policy. Declared, it replaces the agent's; left out, the agent keeps its own. */
  retry?: RetryPolicy;
  /** Agent version (default "1"). */
  version?: string;
  description?: string;
}

/**
 * An agent's retry policy. Each field left out takes the server default (5 attempts, 200 ms
 * base, 30 s cap). Attempts count the first one; after the n-th failure the task waits a random
 * delay up to `min(capMs, baseMs * 2 ** (n - 1))`.
 */
export interface RetryPolicy {
  maxAttempts?: number;
  baseMs?: number;
  capMs?: number;
}

const RETRY_FIELDS = { maxAttempts: "max_attempts", baseMs: "base_ms", capMs: "cap_ms" } as const;

/** `policy` as the worker protocol spells it; unknown fields are refused here, by name. */
function retryDeclaration(agent: string, policy: RetryPolicy): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [field, value] of Object.entries(policy)) {
    if (!Object.hasOwn(RETRY_FIELDS, field)) {
      throw new TypeError(`agent ${agent}: unknown retry field ${JSON.stringify(field)}; the fields are maxAttempts, baseMs and capMs`);
    }
    if (value !== undefined) out[RETRY_FIELDS[field as keyof RetryPolicy]] = value as number;
  }
  return out;
}

/** What a handler can see and do while it runs one attempt. */
export interface TaskContext {
  readonly taskId: string;
  readonly attempt: number;
  readonly agent: string;
  /** W3C trace context of the task, if any. */
  readonly traceparent: string | undefined;
  readonly parentId: string | undefined;
  /** The attempt's time budget in milliseconds. */
  readonly timeoutMs: number;
  /**
   * Aborts when the task is cancelled (reason: an `AbortError` DOMException), the attempt
   * times out (a `TimeoutError` DOMException), the connection to the server is lost, or the run
   * ends in a wait (reason: the SDK's internal suspension, see `sleep`).
   */
  readonly signal: AbortSignal;
  /** `signal.aborted`. */
  readonly cancelled: boolean;
  log(level: LogLevel, message: string): Promise<void>;
  /** Progress as a fraction in [0, 1], and/or a message. */
  progress(progress: number | null | undefined, message?: string): Promise<void>;
  /** Streams a piece of output before the result (e.g. LLM tokens). */
  partial(data: unknown): Promise<void>;
  /**
   * A durable step: runs `fn` once per task. Its result (JSON; `undefined` becomes `null`) is
   * stored on the server before this resolves, and on every later run of the task (a retry, a
   * lost worker) the step resolves to the stored result without running `fn`. It resolves to
   * the result as JSON carries it (as stored), the same on the first run as on later ones.
   *
   * If `fn` throws, the failure is recorded on the step and the original error is rethrown; the
   * next run of the task runs the step again. A result that is not JSON-serialisable rejects
   * with a `PermanentError` (code `invalid_step_output`) without being sent. A step the server
   * refuses rejects with a `PermanentError` carrying the server's code (`step_output_too_large`,
   * `too_many_steps`, `invalid_step`); an attempt that lost its lease, was cancelled, timed out
   * or lost its connection rejects with the attempt's abort reason (`ctx.signal.reason`).
   * Calling a step again with the same name in one run resolves to the first result (calls
   * with one name run one at a time: a call made while another runs waits for it).
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * A durable sleep of `seconds`, named `name` (a step name). The first time, this run ends
   * here: the promise rejects with the SDK's internal suspension, which the handler must let
   * through (whatever the handler does afterwards, nothing more is sent for this run), the
   * worker's slot is free at once, and the task runs again once the time has passed, finding
   * the sleep over (it then resolves at once). Rejects with a `PermanentError` when the server
   * refuses the wait (`invalid_wait`, `too_many_steps`).
   */
  sleep(name: string, seconds: number): Promise<void>;
  /** `sleep` until `when`: a `Date`, or milliseconds since the Unix epoch. */
  sleepUntil(name: string, when: Date | number): Promise<void>;
  /**
   * Waits for the signal `name` (sent with `Client.signal` or `POST
   * /api/v1/tasks/{id}/signals/{name}`) and resolves to its payload; the step is `signal:{name}`.
   * A signal sent before the wait is kept for it. If none is there, this run ends as with `sleep`
   * and the task runs again when the signal comes. With `timeout` (seconds), a signal that does
   * not come in time makes a later run's wait reject with `WaitTimeoutError`, which the handler
   * may catch.
   */
  waitForSignal<T = unknown>(name: string, options?: WaitForSignalOptions): Promise<T>;
  /**
   * Submits a child task of this task (agent `agent`, `input`) and resolves to its id, once per
   * task: the step is `spawn:{key}`, or `spawn:#{n}` without a key (`n` counts this run's
   * key-less spawns from 1), so later runs get the same child. Rejects with a `PermanentError`
   * carrying the server's code when it refuses (`agent_not_found`, `invalid_input`,
   * `too_many_children`, …).
   */
  spawn(agent: string, input: unknown, options?: SpawnOptions): Promise<string>;
  /**
   * Waits until the child tasks `ids` have all finished and resolves to their results in the
   * same order: a succeeded child's output, or a `ChildFailure` for one that failed, went dead
   * or was cancelled (`{ raiseOnFailure: true }` rejects with `ChildTaskFailed` for the first of
   * those instead). The step is `join:#{n}` (`n` counts this run's joins from 1). Until they
   * have finished, this run ends as with `sleep` and the task runs again when they have.
   */
  join(ids: readonly string[], options?: JoinOptions): Promise<unknown[]>;
  /**
   * The task's input files, by file id: one entry for each `{"$file": id}` in the input, with
   * its `name`, `size`, `content_type` and `sha256` (empty when the input has none).
   */
  readonly files: Readonly<Record<string, InputFile>>;
  /**
   * Uploads an artifact of the task and resolves to its file id (put `{"$file": id}` in the
   * output to hand it on). `data` is bytes, a `Blob`, a `ReadableStream`, or a string: the path
   * of a file, streamed from disk. `contentType`, left out, is guessed by the server from
   * `name`. Works while this attempt runs; rejects with a `SwitchyardError` carrying the
   * server's code (`lease_lost`, `invalid_signature` once the URL expired, `file_too_large`,
   * `quota_exceeded`, `invalid_file`).
   */
  upload(name: string, data: UploadData, contentType?: string): Promise<string>;
  /**
   * The bytes of the input file `fileId` (a key of `files`); a `PermanentError` (code
   * `unknown_file`) names an id that is not one, a `SwitchyardError` carries an HTTP error.
   */
  download(fileId: string): Promise<Uint8Array>;
  /** Streams the input file `fileId` to `path` (Node), never holding it whole; errors as `download`. */
  downloadTo(fileId: string, path: string): Promise<void>;
}

export interface WaitForSignalOptions {
  /** Seconds to wait for the signal before the wait times out; left out, no timeout. */
  timeout?: number;
}

export interface SpawnOptions {
  /** Names the spawn's step `spawn:{key}` (instead of counting key-less spawns). */
  key?: string;
  /** The child task's priority (higher runs first). */
  priority?: number;
}

export interface JoinOptions {
  /** Reject with `ChildTaskFailed` for the first child that did not succeed. */
  raiseOnFailure?: boolean;
}

/**
 * Runs one attempt: what it returns (or resolves to) is the task's output. `Input` is what the
 * handler declares its input to be; the server has validated it against `inputSchema`, if any.
 */
export type Handler<Input = unknown> = (ctx: TaskContext, input: Input) => unknown;

export interface WorkerOptions {
  /** The server's base URL, `http(s)://host:port`. */
  url: string;
  /** An API key with the `worker` scope, sent as `Authorization: Bearer` on the upgrade. */
  apiKey?: string;
  /**
   * Instead of `apiKey`: where WebSocket tickets come from (`POST /api/v1/auth/ws-ticket`, minted
   * with a credential that may act as a worker; single use, valid 30 s). Called once per
   * connection, reconnections included; the ticket goes in the URL (`?ticket=`), for places that
   * cannot set headers.
   */
  ticket?: () => string | Promise<string>;
  /** Tasks run at once (1 to 4096, default 4). */
  slots?: number;
  /** Shown in the server's workers list (default: host name and process id). */
  name?: string;
  /** Longest pause between reconnection attempts, in seconds (default 30). */
  maxBackoff?: number;
  /** Where the worker reports connects, disconnects and rejected results (default: console). */
  logger?: Pick<Console, "info" | "warn">;
}

interface Running {
  attempt: number;
  /** Aborts the attempt's signal (once; later reasons are ignored). */
  abort: (reason: DOMException) => void;
  finish: (msg: Record<string, unknown>) => void;
}

/** The server's answer to each request an attempt makes about a step. */
const ANSWERS = { step: "step_recorded", wait: "wait_result", spawn: "spawned" } as const;
type StepRequest = keyof typeof ANSWERS;

/** A `step`, `wait` or `spawn` message waiting for its answer. */
interface AnswerWaiter {
  resolve: (answer: Record<string, unknown>) => void;
  reject: (reason: unknown) => void;
}

/** Waiters are matched to answers by the answer's type, task, attempt and step name. */
function answerKey(answer: string, taskId: string, attempt: number, name: string): string {
  return `${answer}\u0000${taskId}\u0000${attempt}\u0000${name}`;
}

/**
 * What a run that ended in a wait throws through its handler (the server has ended the
 * attempt and freed the slot): not an `Error`, so that it is not mistaken for a failure. A
 * handler that catches it must rethrow it; whatever it does, nothing more is sent for the run.
 */
class Suspension {
  readonly name = "Suspension";
  readonly message: string;

  constructor(taskId: string, attempt: number, step: string) {
    this.message = `task ${taskId} waits (${step}): run ${attempt} is over and resumes when the wait ends`;
  }

  toString(): string {
    return `${this.name}: ${this.message}`;
  }
}

const HANDSHAKE_TIMEOUT_MS = 15_000;

/**
 * A remote worker: connects to the server, declares its agents in `hello`, runs the tasks it
 * is assigned, heartbeats, reconnects with backoff and jitter, and drains on shutdown.
 */
export class Worker {
  readonly url: string;
  readonly name: string;
  readonly slots: number;
  readonly #apiKey: string | undefined;
  readonly #ticket: (() => string | Promise<string>) | undefined;
  readonly #maxBackoffMs: number;
  readonly #logger: Pick<Console, "info" | "warn">;
  readonly #agents = new Map<string, { decl: Record<string, unknown>; handler: Handler<unknown> }>();
  readonly #stop = new AbortController();
  #running = false;
  #workerId: string | undefined;
  #connected: Array<() => void> = [];
  #onStop: (() => void) | undefined;

  constructor(options: WorkerOptions) {
    if (!options.apiKey && !options.ticket) throw new TypeError("Worker needs an apiKey with the worker scope, or a ticket source");
    this.url = options.url;
    wsUrl(options.url, ""); // validates the URL
    this.#apiKey = options.apiKey;
    this.#ticket = options.ticket;
    this.slots = Math.max(1, Math.min(4096, Math.floor(options.slots ?? 4)));
    this.name = options.name ?? defaultName();
    this.#maxBackoffMs = (options.maxBackoff ?? 30) * 1000;
    this.#logger = options.logger ?? console;
  }

  /** Serves agent `name` with `handler(ctx, input)`; what it returns is the task's output. */
  agent<Input = unknown>(name: string, handler: Handler<Input>): this;
  agent<Input = unknown>(name: string, options: AgentOptions, handler: Handler<Input>): this;
  agent<Input = unknown>(name: string, optionsOrHandler: AgentOptions | Handler<Input>, maybeHandler?: Handler<Input>): this {
    const options = typeof optionsOrHandler === "function" ? {} : optionsOrHandler;
    const handler = typeof optionsOrHandler === "function" ? optionsOrHandler : maybeHandler;
    if (typeof handler !== "function") throw new TypeError(`agent ${name}: a handler function is required`);
    const decl: Record<string, unknown> = { name, version: options.version ?? "1" };
    if (options.description !== undefined) decl["description"] = options.description;
    if (options.inputSchema !== undefined) decl["input_schema"] = options.inputSchema;
    if (options.outputSchema !== undefined) decl["output_schema"] = options.outputSchema;
    if (options.timeoutMs !== undefined) decl["timeout_ms"] = options.timeoutMs;
    if (options.retry !== undefined) decl["retry"] = retryDeclaration(name, options.retry);
    // The server validated the input against `inputSchema`; the handler's `Input` is its word for it.
    this.#agents.set(name, { decl, handler: handler as Handler<unknown> });
    return this;
  }

  /** The id the server gave this worker on its current connection. */
  get workerId(): string | undefined {
    return this.#workerId;
  }

  /** Resolves once the worker is connected (welcomed by the server). */
  connected(): Promise<void> {
    if (this.#workerId !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#connected.push(resolve));
  }

  /**
   * Runs until SIGINT/SIGTERM (in Node) or `stop()`: then stops taking work, finishes the
   * tasks it has and resolves. Rejects with a `SwitchyardError` when the server refuses the
   * worker (wrong key, missing scope, rejected hello).
   */
  async run(): Promise<void> {
    const proc = (globalThis as { process?: NodeJS.Process }).process;
    const onSignal = () => this.stop();
    if (proc?.once) {
      proc.on("SIGTERM", onSignal);
      proc.on("SIGINT", onSignal);
    }
    try {
      await this.start();
    } finally {
      if (proc?.removeListener) {
        proc.removeListener("SIGTERM", onSignal);
        proc.removeListener("SIGINT", onSignal);
      }
    }
  }

  /** Like `run()` without installing signal handlers: runs until `stop()`. */
  async start(): Promise<void> {
    if (this.#running) throw new Error("the worker is already running");
    if (this.#agents.size === 0) throw new TypeError("declare at least one agent before running the worker");
    this.#running = true;
    const url = wsUrl(this.url, "/api/v1/workers/ws");
    let backoffMs = 100;
    try {
      for (;;) {
        if (this.#stop.signal.aborted) return;
        let why: string;
        try {
          const end = await this.#session(url);
          if (end === "stopped") return;
          backoffMs = 100; // the session was up: start the backoff over
          why = "the connection closed";
        } catch (e) {
          if (!(e instanceof ConnectionError)) throw e;
          why = e.message;
        }
        if (this.#stop.signal.aborted) return;
        const pause = jitter(backoffMs);
        this.#logger.warn(`switchyard worker disconnected (${why}); reconnecting in ${Math.round(pause)} ms`);
        await sleep(pause, this.#stop.signal);
        backoffMs = Math.min(backoffMs * 2, this.#maxBackoffMs);
      }
    } finally {
      this.#running = false;
    }
  }

  /** Drain: take no new tasks, finish the running ones, then `run()` resolves. */
  stop(): void {
    this.#stop.abort();
    this.#onStop?.();
  }

  async #session(url: string): Promise<"stopped" | "lost"> {
    const socket = this.#ticket
      ? await openSocket(`${url}?ticket=${encodeURIComponent(await this.#ticket())}`, {}, HANDSHAKE_TIMEOUT_MS)
      : await openSocket(url, { authorization: `Bearer ${this.#apiKey ?? ""}` }, HANDSHAKE_TIMEOUT_MS);
    const { welcome, early } = await this.#handshake(socket);
    this.#workerId = String(welcome["worker_id"]);
    this.#logger.info(`switchyard worker ${this.name} connected as ${this.#workerId}`);
    for (const resolve of this.#connected.splice(0)) resolve();
    const heartbeatMs = Math.max(100, Number(welcome["heartbeat_ms"] ?? 5000) / 2);
    const running = new Map<string, Running>();
    // Steps, waits and spawns of this connection's attempts waiting for their answers (several
    // tasks may wait at once). A lost connection aborts the attempts, which rejects their waiters.
    const answerWaiters = new Map<string, AnswerWaiter>();
    let draining = false;
    // Assignments the server sent before it read `drain` arrive before its `draining` answer:
    // the drain is over only when that answer came and nothing runs.
    let drainAcknowledged = false;
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;

    return new Promise<"stopped" | "lost">((resolve) => {
      const send = (msg: Record<string, unknown>) => {
        if (!closed && socket.isOpen) socket.send(JSON.stringify(msg));
      };
      const heartbeat = setInterval(() => send({ type: "heartbeat" }), heartbeatMs);
      const end = (how: "stopped" | "lost") => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        clearTimeout(drainTimer);
        this.#onStop = undefined;
        this.#workerId = undefined;
        // Whatever still runs belongs to a lost connection; the server has re-queued it.
        const lost = new DOMException("the connection to the server was lost", "AbortError");
        for (const r of running.values()) r.abort(lost);
        running.clear();
        // (Aborting an attempt rejects its steps' waiters; these are any left over.)
        for (const waiter of answerWaiters.values()) waiter.reject(lost);
        answerWaiters.clear();
        if (how === "stopped") socket.close(1000, "drained");
        resolve(how);
      };
      const maybeDrained = () => {
        if (draining && drainAcknowledged && running.size === 0) end("stopped");
      };
      const beginDrain = () => {
        if (draining || closed) return;
        draining = true;
        send({ type: "drain" });
        // A server that never answers `drain` does not keep an idle worker forever.
        drainTimer = setTimeout(() => {
          drainAcknowledged = true;
          maybeDrained();
        }, HANDSHAKE_TIMEOUT_MS);
      };
      this.#onStop = beginDrain;
      socket.onClose = () => end("lost");
      socket.onMessage = (text) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(text) as Record<string, unknown>;
        } catch {
          this.#logger.warn("switchyard worker: unreadable message from the server");
          return;
        }
        switch (msg["type"]) {
          case "assign":
            this.#runAttempt(msg, running, answerWaiters, send, maybeDrained);
            break;
          case "step_recorded":
          case "wait_result":
          case "spawned": {
            const key = answerKey(msg["type"], String(msg["task_id"]), Number(msg["attempt"]), String(msg["name"]));
            const waiter = answerWaiters.get(key);
            if (waiter) {
              answerWaiters.delete(key);
              waiter.resolve(msg);
            }
            break;
          }
          case "draining":
            drainAcknowledged = true;
            maybeDrained();
            break;
          case "cancel": {
            const r = running.get(String(msg["task_id"]));
            if (r && r.attempt === msg["attempt"]) {
              r.abort(new DOMException("the task was cancelled", "AbortError"));
              r.finish({ type: "cancelled" });
            }
            break;
          }
          case "ack":
            if (msg["accepted"] === false) {
              this.#logger.warn(
                `switchyard worker: the server rejected the result of ${String(msg["task_id"])} attempt ${String(msg["attempt"])}: the attempt had lost its lease`,
              );
            }
            break;
          case "error":
            this.#logger.warn(`switchyard worker: server error ${String(msg["code"])}: ${String(msg["message"])}`);
            break;
          default:
            break;
        }
      };
      // Frames that came in the same read as `welcome` (an assignment often does) arrived
      // before this handler was installed: handle them now, in order.
      for (const text of early.splice(0)) socket.onMessage(text);
      if (!socket.isOpen) end("lost");
      if (this.#stop.signal.aborted) beginDrain();
    });
  }

  #handshake(socket: Socket): Promise<{ welcome: Record<string, unknown>; early: string[] }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new ConnectionError("the server did not answer hello in time"));
      }, HANDSHAKE_TIMEOUT_MS);
      socket.onClose = (code, reason) => {
        clearTimeout(timer);
        reject(new ConnectionError(`the connection closed before welcome (${code} ${reason})`));
      };
      socket.onMessage = (text) => {
        clearTimeout(timer);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(text) as Record<string, unknown>;
        } catch {
          socket.close();
          reject(new ConnectionError("unreadable answer to hello"));
          return;
        }
        if (msg["type"] === "welcome") {
          // Kept until the session installs its handlers (see #session).
          const early: string[] = [];
          socket.onClose = () => {};
          socket.onMessage = (text) => early.push(text);
          resolve({ welcome: msg, early });
        } else if (msg["type"] === "error") {
          const code = textOr(msg["code"], "unknown_error");
          const message = textOr(msg["message"], code);
          socket.close();
          // A server-side hiccup is worth another try; a refusal of this worker is not.
          if (["internal", "unavailable", "rate_limited"].includes(code)) {
            reject(new ConnectionError(`${code}: ${message}`));
          } else {
            reject(new SwitchyardError(code, `the server refused the worker: ${message}`));
          }
        } else {
          socket.close();
          reject(new ConnectionError(`expected welcome, got ${String(msg["type"])}`));
        }
      };
      socket.send(
        JSON.stringify({
          type: "hello",
          name: this.name,
          slots: this.slots,
          version: `switchyard-sdk-typescript/${VERSION}`,
          agents: [...this.#agents.values()].map((a) => a.decl),
        }),
      );
    });
  }

  #runAttempt(
    msg: Record<string, unknown>,
    running: Map<string, Running>,
    answerWaiters: Map<string, AnswerWaiter>,
    send: (msg: Record<string, unknown>) => void,
    afterFinish: () => void,
  ): void {
    const taskId = String(msg["task_id"]);
    const attempt = Number(msg["attempt"]);
    const agent = String(msg["agent"]);
    const timeoutMs = Number(msg["timeout_ms"] ?? 60_000);
    // Most handlers never look at their signal: its AbortController is made on first use
    // (already aborted, if the attempt was), not for every task.
    let controller: AbortController | undefined;
    let abortReason: unknown;
    let aborted = false;
    // Keys (see `answerKey`) of this attempt's requests waiting for their answers.
    const waiting = new Set<string>();
    const rejectWaiting = (reason: unknown) => {
      for (const key of waiting) {
        answerWaiters.get(key)?.reject(reason);
        answerWaiters.delete(key);
      }
      waiting.clear();
    };
    const abort = (reason: unknown) => {
      if (aborted) return;
      aborted = true;
      abortReason = reason;
      controller?.abort(reason);
      rejectWaiting(reason);
    };
    let done = false;
    /** Ends the attempt here: sends `out`, if any (a run that ended in a wait sends nothing). */
    const close = (out: Record<string, unknown> | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (running.get(taskId)?.attempt === attempt) running.delete(taskId);
      if (out !== undefined) send({ ...out, task_id: taskId, attempt });
      // A request the handler left without awaiting it will not be answered now.
      rejectWaiting(aborted ? abortReason : new DOMException("the attempt is over", "AbortError"));
      afterFinish();
    };
    const finish = (out: Record<string, unknown>) => close(out);
    const timer = setTimeout(() => {
      abort(new DOMException(`the attempt did not finish within ${timeoutMs} ms`, "TimeoutError"));
      finish(failure(new TaskError("retryable", `the attempt did not finish within ${timeoutMs} ms`, { code: "timeout" })));
    }, timeoutMs);
    running.set(taskId, { attempt, abort, finish });

    const about = { task_id: taskId, attempt };

    /**
     * The server answered a wait `suspended`: it has ended the attempt and freed the slot. The
     * handler unwinds with the suspension (it is also the signal's abort reason and what every
     * later request rejects with), and nothing more is sent for the attempt.
     */
    const suspend = (step: string): unknown => {
      if (!done) {
        abort(new Suspension(taskId, attempt, step));
        close(undefined);
      }
      return abortReason;
    };

    // Durable steps: results stored by earlier runs (from `assign`) and by this one.
    const stored = new Map<string, unknown>();
    const previous = msg["steps"];
    if (previous !== null && typeof previous === "object" && !Array.isArray(previous)) {
      for (const [name, output] of Object.entries(previous as Record<string, unknown>)) stored.set(name, output);
    }
    // Steps of this run that have not ended yet: a second call with the same name waits for the
    // first, then returns its result (or, if it failed, runs).
    const inFlight = new Map<string, Promise<unknown>>();
    /** The attempt is over: what a request made now rejects with. */
    const gone = (): { reason: unknown } | undefined => {
      if (aborted) return { reason: abortReason };
      return done ? { reason: new DOMException("the attempt is over", "AbortError") } : undefined;
    };
    /** Sends a `step`, `wait` or `spawn` and resolves with the server's answer (rejects if the attempt ends first). */
    const ask = async (type: StepRequest, name: string, m: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const ended = gone();
      if (ended !== undefined) throw ended.reason;
      return new Promise((resolve, reject) => {
        const key = answerKey(ANSWERS[type], taskId, attempt, name);
        waiting.add(key);
        answerWaiters.set(key, {
          resolve: (answer) => {
            waiting.delete(key);
            resolve(answer);
          },
          reject,
        });
        send({ type, ...about, name, ...m });
      });
    };
    /** A refused step, wait or spawn as the error the handler sees. */
    const refusal = (name: string, answer: Record<string, unknown>): unknown => {
      const code = textOr(answer["code"], "refused");
      const message = textOr(answer["message"], `the server refused ${name}: ${code}`);
      if (code === "lease_lost") {
        // The attempt is no longer ours: stop as when the server cancels it.
        abort(new DOMException(`the attempt lost its lease: ${message}`, "AbortError"));
        finish({ type: "cancelled" });
        return abortReason;
      }
      return new PermanentError(message, { code });
    };
    /**
     * Runs a durable piece of the handler once per name: resolves to the stored result if there
     * is one; otherwise `run` produces it (and stores it, once the server has). Calls with one
     * name run one at a time.
     */
    const durable = (name: string, run: () => Promise<unknown>): Promise<unknown> => {
      if (stored.has(name)) return Promise.resolve(stored.get(name));
      const pending = inFlight.get(name);
      if (pending !== undefined) {
        const again = () => durable(name, run);
        return pending.then(again, again);
      }
      const p = run();
      inFlight.set(name, p);
      const settled = () => {
        inFlight.delete(name);
      };
      p.then(settled, settled);
      return p;
    };
    const runStep = async (name: string, fn: () => unknown): Promise<unknown> => {
      const ended = gone();
      if (ended !== undefined) throw ended.reason;
      const started = performance.now();
      let value: unknown;
      try {
        value = await fn();
      } catch (error) {
        // Ended meanwhile (cancelled, timed out, disconnected): nothing more to report.
        if (gone() !== undefined) throw error;
        const failed = failure(error);
        const stepError: Record<string, unknown> = { message: failed["message"], class: failed["class"] };
        if (failed["code"] !== undefined) stepError["code"] = failed["code"];
        else if (!(error instanceof TaskError)) stepError["code"] = "exception";
        const answer = await ask("step", name, { duration_ms: elapsed(started), error: stepError });
        if (answer["accepted"] === false) throw refusal(name, answer);
        throw error;
      }
      const output = asJson(`step ${name}: the result`, value, "invalid_step_output");
      const answer = await ask("step", name, { output, duration_ms: elapsed(started) });
      if (answer["accepted"] === false) throw refusal(name, answer);
      stored.set(name, output);
      return output;
    };
    /** Sends a `wait` and ends as its `wait_result` says. `signal` names a signal wait's signal. */
    const runWait = async (name: string, m: Record<string, unknown>, signal?: string): Promise<unknown> => {
      const answer = await ask("wait", name, m);
      switch (answer["status"]) {
        case "ready": {
          const output = answer["output"] === undefined ? null : answer["output"];
          stored.set(name, output);
          return output;
        }
        case "suspended":
          throw suspend(name);
        case "timed_out":
          throw new WaitTimeoutError(signal ?? name);
        default:
          throw refusal(name, answer);
      }
    };
    const wait = (name: string, m: Record<string, unknown>, signal?: string): Promise<unknown> =>
      durable(name, () => runWait(name, m, signal));
    const step = <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
      if (typeof name !== "string") return Promise.reject(new TypeError("a step's name must be a string"));
      if (typeof fn !== "function") return Promise.reject(new TypeError(`step ${name}: a function is required`));
      // Stored results are JSON as it was recorded; `T` is the handler's word for it.
      return durable(name, () => runStep(name, fn)) as Promise<T>;
    };
    const sleepFor = async (name: string, seconds: number): Promise<void> => {
      if (typeof name !== "string") throw new TypeError("a sleep's name must be a string");
      if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
        throw new RangeError(`sleep ${name}: seconds must be a finite number >= 0, got ${String(seconds)}`);
      }
      await wait(name, { kind: "sleep", duration_ms: Math.round(seconds * 1000) });
    };
    const sleepUntil = async (name: string, when: Date | number): Promise<void> => {
      if (typeof name !== "string") throw new TypeError("a sleep's name must be a string");
      const until = when instanceof Date ? when.getTime() : when;
      if (typeof until !== "number" || !Number.isFinite(until)) {
        throw new RangeError(`sleepUntil ${name}: when must be a valid Date or milliseconds since the epoch`);
      }
      await wait(name, { kind: "sleep", until: Math.round(until) });
    };
    const waitForSignal = async <T>(signal: string, options: WaitForSignalOptions = {}): Promise<T> => {
      if (typeof signal !== "string") throw new TypeError("a signal's name must be a string");
      const m: Record<string, unknown> = { kind: "signal", signal };
      if (options.timeout !== undefined) {
        if (typeof options.timeout !== "number" || !Number.isFinite(options.timeout) || options.timeout < 0) {
          throw new RangeError(`waitForSignal ${signal}: timeout is in seconds and must be a finite number >= 0`);
        }
        m["timeout_ms"] = Math.round(options.timeout * 1000);
      }
      // The payload is JSON as the server stored it; `T` is the handler's word for it.
      return (await wait(`signal:${signal}`, m, signal)) as T;
    };
    // Key-less spawns and joins are named by their count in this run, so that a run that makes
    // its calls in the same order meets its own steps again.
    let spawns = 0;
    let joins = 0;
    const spawn = async (childAgent: string, input: unknown, options: SpawnOptions = {}): Promise<string> => {
      if (typeof childAgent !== "string") throw new TypeError("spawn: the agent's name must be a string");
      if (options.key !== undefined && typeof options.key !== "string") throw new TypeError("spawn: key must be a string");
      const name = options.key !== undefined ? `spawn:${options.key}` : `spawn:#${++spawns}`;
      const id = await durable(name, async () => {
        const m: Record<string, unknown> = {
          agent: childAgent,
          input: asJson(`${name}: the input`, input ?? {}, "invalid_input"),
        };
        if (options.priority !== undefined) m["priority"] = options.priority;
        const answer = await ask("spawn", name, m);
        if (answer["accepted"] !== true || typeof answer["child_id"] !== "string") throw refusal(name, answer);
        stored.set(name, answer["child_id"]);
        return answer["child_id"];
      });
      return String(id);
    };
    const join = async (ids: readonly string[], options: JoinOptions = {}): Promise<unknown[]> => {
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string")) {
        throw new TypeError("join: ids must be an array of task ids (strings)");
      }
      const name = `join:#${++joins}`;
      const results = await wait(name, { kind: "children", children: [...ids] });
      const out = childResults(name, results);
      if (options.raiseOnFailure) {
        const failed = out.find((r) => r instanceof ChildFailure);
        if (failed !== undefined) throw new ChildTaskFailed(failed);
      }
      return out;
    };
    // Files: the input's (signed URLs to GET) and this attempt's upload URL, both paths on the
    // server's HTTP base, sent with no Authorization header.
    const { files, urls } = inputFiles(msg["files"]);
    const uploadUrl = typeof msg["upload_url"] === "string" ? msg["upload_url"] : undefined;
    const doFetch = globalThis.fetch.bind(globalThis);
    const upload = async (name: string, data: UploadData, contentType?: string): Promise<string> => {
      if (typeof name !== "string" || name === "") throw new TypeError("upload: a file name is required");
      if (uploadUrl === undefined) throw new Error("upload: the server gave this attempt no upload_url (does it store files?)");
      const ended = gone();
      if (ended !== undefined) throw ended.reason;
      const body = await uploadBody(data);
      const url = `${resolveUrl(this.url, uploadUrl)}${uploadUrl.includes("?") ? "&" : "?"}name=${encodeURIComponent(name)}`;
      const info = await postUpload(doFetch, url, body, {}, contentType, ctx.signal);
      return info.id;
    };
    const fetchInput = async (fileId: string): Promise<Response> => {
      const url = typeof fileId === "string" ? urls.get(fileId) : undefined;
      if (url === undefined) {
        const known = [...urls.keys()];
        throw new PermanentError(
          `file ${JSON.stringify(fileId)} is not an input file of task ${taskId} (ctx.files has ${known.length ? known.join(", ") : "none"})`,
          { code: "unknown_file" },
        );
      }
      return sendRequest(doFetch, `download ${fileId}`, resolveUrl(this.url, url), { signal: ctx.signal });
    };
    // Reports are queued on the socket in order; the promise lets handlers `await` them as
    // they would a network call, without a round trip.
    const report = (m: Record<string, unknown>): Promise<void> => {
      if (!done) send({ ...m, ...about });
      return Promise.resolve();
    };
    const ctx: TaskContext = {
      taskId,
      attempt,
      agent,
      traceparent: typeof msg["traceparent"] === "string" ? msg["traceparent"] : undefined,
      parentId: typeof msg["parent_id"] === "string" ? msg["parent_id"] : undefined,
      timeoutMs,
      get signal() {
        if (controller === undefined) {
          controller = new AbortController();
          if (aborted) controller.abort(abortReason);
        }
        return controller.signal;
      },
      get cancelled() {
        return aborted;
      },
      log: (level, message) => report({ type: "log", level, message: String(message) }),
      progress: (progress, message) => {
        const m: Record<string, unknown> = { type: "progress" };
        if (progress !== null && progress !== undefined) m["progress"] = progress;
        if (message !== undefined) m["message"] = message;
        return report(m);
      },
      partial: (data) => report({ type: "partial", data: data === undefined ? null : data }),
      step,
      sleep: sleepFor,
      sleepUntil,
      waitForSignal,
      spawn,
      join,
      files,
      upload,
      download: async (fileId) => readBytes(await fetchInput(fileId)),
      downloadTo: async (fileId, path) => writeTo(await fetchInput(fileId), path),
    };

    const entry = this.#agents.get(agent);
    if (!entry) {
      finish(failure(new TaskError("permanent", `this worker does not serve ${JSON.stringify(agent)}`)));
      return;
    }
    Promise.resolve()
      .then(() => entry.handler(ctx, msg["input"]))
      .then(
        (output) => finish({ type: "result", output: output === undefined ? null : output }),
        (error: unknown) => {
          if (aborted && !(error instanceof TaskError)) {
            // The handler gave up because of its signal; `finish` has already reported why.
            finish({ type: "cancelled" });
            return;
          }
          finish(failure(error));
        },
      );
  }
}

function failure(error: unknown): Record<string, unknown> {
  let errorClass: ErrorClass = "retryable";
  let code: string | undefined;
  let message: string;
  let retryAfterMs: number | undefined;
  if (error instanceof TaskError) {
    errorClass = error.errorClass;
    code = error.code;
    message = error.message;
    if (error instanceof RateLimitedError && error.retryAfter !== undefined) {
      retryAfterMs = Math.round(error.retryAfter * 1000);
    }
  } else if (error instanceof Error) {
    message = error.message || error.name;
  } else {
    message = String(error);
  }
  const out: Record<string, unknown> = { type: "error", class: errorClass, message };
  if (code !== undefined) out["code"] = code;
  if (retryAfterMs !== undefined) out["retry_after_ms"] = retryAfterMs;
  return out;
}

/** The `files` of an `assign`: what handlers see (`ctx.files`) and the signed URL of each. */
function inputFiles(raw: unknown): { files: Readonly<Record<string, InputFile>>; urls: Map<string, string> } {
  const files: Record<string, InputFile> = {};
  const urls = new Map<string, string>();
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    for (const [id, value] of Object.entries(raw as Record<string, unknown>)) {
      if (value === null || typeof value !== "object") continue;
      const f = value as Record<string, unknown>;
      if (typeof f["url"] === "string") urls.set(id, f["url"]);
      files[id] = {
        name: textOr(f["name"], ""),
        size: Number(f["size"] ?? 0),
        content_type: textOr(f["content_type"], "application/octet-stream"),
        sha256: textOr(f["sha256"], ""),
      };
    }
  }
  return { files: Object.freeze(files), urls };
}

/** Milliseconds since `started` (a `performance.now()`), as a whole number. */
function elapsed(started: number): number {
  return Math.max(0, Math.round(performance.now() - started));
}

/**
 * A value as JSON carries it (`undefined` is `null`): what the server stores and later runs
 * get. Not serialisable (a BigInt, a cycle, a function) is a permanent error with `code`;
 * `what` names the value in its message (`step draft: the result`).
 */
function asJson(what: string, value: unknown, code: string): unknown {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new PermanentError(`${what} is not JSON-serialisable: ${e instanceof Error ? e.message : String(e)}`, { code, cause: e });
  }
  if (text === undefined) {
    throw new PermanentError(`${what} (a ${typeof value}) is not JSON-serialisable`, { code });
  }
  return JSON.parse(text) as unknown;
}

/**
 * A join's stored result (`[{task_id, status, output | error}]`) as `ctx.join` returns it: the
 * output of each child that succeeded, a `ChildFailure` for each other one, in order.
 */
function childResults(name: string, results: unknown): unknown[] {
  if (!Array.isArray(results)) {
    throw new PermanentError(`${name}: the server's result is not a list of children`, { code: "invalid_wait_result" });
  }
  return results.map((item: unknown) => {
    const child = (item !== null && typeof item === "object" ? item : {}) as Record<string, unknown>;
    if (child["status"] === "succeeded") return child["output"] === undefined ? null : child["output"];
    const error = child["error"] !== null && typeof child["error"] === "object" ? (child["error"] as TaskErrorInfo) : null;
    return new ChildFailure(String(child["task_id"]), String(child["status"]) as ChildFailureStatus, error);
  });
}

function defaultName(): string {
  const proc = (globalThis as { process?: { pid?: number; env?: Record<string, string | undefined> } }).process;
  const host = proc?.env?.["HOSTNAME"] || "worker";
  return `${host}-${proc?.pid ?? Math.floor(Math.random() * 1e6)}`;
}
