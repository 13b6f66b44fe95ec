import { ConnectionError, PermanentError, SwitchyardError, TaskError, RateLimitedError, textOr, type ErrorClass } from "./errors.js";
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
   * times out (a `TimeoutError` DOMException) or the connection to the server is lost.
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

/** A `step` message waiting for its `step_recorded` answer. */
interface StepWaiter {
  resolve: (answer: Record<string, unknown>) => void;
  reject: (reason: unknown) => void;
}

/** Waiters are matched to answers by task, attempt and step name. */
function stepKey(taskId: string, attempt: number, name: string): string {
  return `${taskId}\u0000${attempt}\u0000${name}`;
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
    // Steps of this connection's attempts waiting for `step_recorded` (several tasks may wait
    // at once). A lost connection aborts the attempts, which rejects their waiters.
    const stepWaiters = new Map<string, StepWaiter>();
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
        for (const waiter of stepWaiters.values()) waiter.reject(lost);
        stepWaiters.clear();
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
            this.#runAttempt(msg, running, stepWaiters, send, maybeDrained);
            break;
          case "step_recorded": {
            const key = stepKey(String(msg["task_id"]), Number(msg["attempt"]), String(msg["name"]));
            const waiter = stepWaiters.get(key);
            if (waiter) {
              stepWaiters.delete(key);
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
    stepWaiters: Map<string, StepWaiter>,
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
    let abortReason: DOMException | undefined;
    // Names of this attempt's steps waiting for `step_recorded`.
    const waiting = new Set<string>();
    const rejectWaiting = (reason: unknown) => {
      for (const name of waiting) {
        const key = stepKey(taskId, attempt, name);
        stepWaiters.get(key)?.reject(reason);
        stepWaiters.delete(key);
      }
      waiting.clear();
    };
    const abort = (reason: DOMException) => {
      if (abortReason !== undefined) return;
      abortReason = reason;
      controller?.abort(reason);
      rejectWaiting(reason);
    };
    let done = false;
    const finish = (out: Record<string, unknown>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (running.get(taskId)?.attempt === attempt) running.delete(taskId);
      send({ ...out, task_id: taskId, attempt });
      // A step the handler left running without awaiting it will not be answered now.
      rejectWaiting(abortReason ?? new DOMException("the attempt is over", "AbortError"));
      afterFinish();
    };
    const timer = setTimeout(() => {
      abort(new DOMException(`the attempt did not finish within ${timeoutMs} ms`, "TimeoutError"));
      finish(failure(new TaskError("retryable", `the attempt did not finish within ${timeoutMs} ms`, { code: "timeout" })));
    }, timeoutMs);
    running.set(taskId, { attempt, abort, finish });

    const about = { task_id: taskId, attempt };

    // Durable steps: results stored by earlier runs (from `assign`) and by this one.
    const stored = new Map<string, unknown>();
    const previous = msg["steps"];
    if (previous !== null && typeof previous === "object" && !Array.isArray(previous)) {
      for (const [name, output] of Object.entries(previous as Record<string, unknown>)) stored.set(name, output);
    }
    // Steps of this run that have not ended yet: a second call with the same name waits for the
    // first, then returns its result (or, if it failed, runs).
    const inFlight = new Map<string, Promise<unknown>>();
    /** The attempt is over: what a step started now rejects with. */
    const gone = () => abortReason ?? (done ? new DOMException("the attempt is over", "AbortError") : undefined);
    /** Sends `step` and resolves with the server's answer (rejects if the attempt ends first). */
    const record = (name: string, m: Record<string, unknown>): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const ended = gone();
        if (ended !== undefined) return reject(ended);
        waiting.add(name);
        stepWaiters.set(stepKey(taskId, attempt, name), {
          resolve: (answer) => {
            waiting.delete(name);
            resolve(answer);
          },
          reject,
        });
        send({ type: "step", ...about, name, ...m });
      });
    /** `step_recorded` with `accepted: false` as the error the handler sees. */
    const refusal = (answer: Record<string, unknown>): Error => {
      const code = textOr(answer["code"], "step_refused");
      const message = textOr(answer["message"], `the server refused step ${code}`);
      if (code === "lease_lost") {
        // The attempt is no longer ours: stop as when the server cancels it.
        const reason = new DOMException(`the attempt lost its lease: ${message}`, "AbortError");
        abort(reason);
        finish({ type: "cancelled" });
        return abortReason ?? reason;
      }
      return new PermanentError(message, { code });
    };
    const runStep = async (name: string, fn: () => unknown): Promise<unknown> => {
      const ended = gone();
      if (ended !== undefined) throw ended;
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
        const answer = await record(name, { duration_ms: elapsed(started), error: stepError });
        if (answer["accepted"] === false) throw refusal(answer);
        throw error;
      }
      const output = asJson(name, value);
      const answer = await record(name, { output, duration_ms: elapsed(started) });
      if (answer["accepted"] === false) throw refusal(answer);
      stored.set(name, output);
      return output;
    };
    const step = <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
      if (typeof name !== "string") return Promise.reject(new TypeError("a step's name must be a string"));
      if (typeof fn !== "function") return Promise.reject(new TypeError(`step ${name}: a function is required`));
      // Stored results are JSON as it was recorded; `T` is the handler's word for it.
      if (stored.has(name)) return Promise.resolve(stored.get(name) as T);
      const pending = inFlight.get(name);
      if (pending !== undefined) {
        const again = () => step(name, fn);
        return pending.then(again, again);
      }
      const p = runStep(name, fn);
      inFlight.set(name, p);
      const settled = () => {
        inFlight.delete(name);
      };
      p.then(settled, settled);
      return p as Promise<T>;
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
          if (abortReason !== undefined) controller.abort(abortReason);
        }
        return controller.signal;
      },
      get cancelled() {
        return abortReason !== undefined;
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
          if (abortReason !== undefined && !(error instanceof TaskError)) {
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

/** Milliseconds since `started` (a `performance.now()`), as a whole number. */
function elapsed(started: number): number {
  return Math.max(0, Math.round(performance.now() - started));
}

/**
 * A step's result as JSON carries it (`undefined` is `null`): what the server stores and
 * later runs get. Not serialisable (a BigInt, a cycle, a function) is a permanent error.
 */
function asJson(name: string, value: unknown): unknown {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new PermanentError(`step ${name}: the result is not JSON-serialisable: ${e instanceof Error ? e.message : String(e)}`, {
      code: "invalid_step_output",
      cause: e,
    });
  }
  if (text === undefined) {
    throw new PermanentError(`step ${name}: the result (a ${typeof value}) is not JSON-serialisable`, { code: "invalid_step_output" });
  }
  return JSON.parse(text) as unknown;
}

function defaultName(): string {
  const proc = (globalThis as { process?: { pid?: number; env?: Record<string, string | undefined> } }).process;
  const host = proc?.env?.["HOSTNAME"] || "worker";
  return `${host}-${proc?.pid ?? Math.floor(Math.random() * 1e6)}`;
}
