import { ConnectionError, SwitchyardError, textOr } from "./errors.js";
import {
  postUpload,
  readBytes,
  send,
  uploadBody,
  writeTo,
  type FileInfo,
  type FilePage,
  type ListFilesOptions,
  type UploadData,
} from "./files.js";
import { jitter, openSocket, sleep, wsUrl, type Socket } from "./socket.js";

export type TaskStatus = "queued" | "running" | "retrying" | "waiting" | "succeeded" | "failed" | "cancelled" | "dead";

/**
 * What a `waiting` task waits for (`Task.wait`): a sleep until `until`, a signal named `signal`
 * (until `until`, its timeout, if it has one), or its child tasks `children` to finish. `name` is
 * the wait's step name.
 */
export interface TaskWait {
  kind: "sleep" | "signal" | "children";
  name: string;
  signal?: string;
  /** RFC 3339. */
  until?: string;
  children?: string[];
  [key: string]: unknown;
}

/** The answer to `Client.signal`: whether the signal ended the task's wait at once. */
export interface SignalResult {
  task_id: string;
  name: string;
  /** `true` if the task was waiting for it (and is queued again); else it is kept for a later wait. */
  resumed: boolean;
  [key: string]: unknown;
}

export interface TaskErrorInfo {
  class: "retryable" | "permanent" | "rate_limited";
  code?: string | null;
  message: string;
  [key: string]: unknown;
}

export interface Attempt {
  number: number;
  status: string;
  worker_id?: string | null;
  worker?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  error?: TaskErrorInfo | null;
  [key: string]: unknown;
}

/**
 * A durable step of a task (`ctx.step`), as `GET /api/v1/tasks/{id}/steps` lists it: a succeeded
 * step with its `output`, a failed one with the `error` of its last run.
 */
export interface Step {
  name: string;
  status: "succeeded" | "failed";
  /** The attempt that ran it (last, for a step that failed before). */
  attempt: number;
  output?: unknown;
  error?: TaskErrorInfo | null;
  started_at: string;
  finished_at: string;
}

/** A task as `GET /api/v1/tasks/{id}` returns it (field names as on the wire). */
export interface Task {
  id: string;
  agent: string;
  status: TaskStatus;
  input: unknown;
  output: unknown;
  error: TaskErrorInfo | null;
  attempts: Attempt[];
  priority?: number;
  cached?: boolean;
  created_at?: string;
  finished_at?: string | null;
  fallback_task_id?: string | null;
  cancel_requested?: boolean;
  /** The parent task's id (a child spawned by `ctx.spawn` or submitted with `parentId`). */
  parent_id?: string | null;
  /** While the task is `waiting`: what it waits for. */
  wait?: TaskWait | null;
  /** The last event's sequence number. */
  seq?: number;
  /**
   * The flow key the task is grouped under: given at submit (`concurrencyKey`) or read from the
   * input by the agent's `concurrency_key` pointer.
   */
  concurrency_key?: string | null;
  /** The schedule that fired the task. */
  schedule?: string | null;
  /** The tick the schedule fired it for (RFC 3339). */
  scheduled_for?: string | null;
  [key: string]: unknown;
}

/** What a schedule's tick does while its previous task is unfinished. */
export type ScheduleOverlap = "allow" | "skip" | "cancel_previous";

/** What happens to ticks missed while no server ran (a resumed schedule fires none of its pause). */
export type ScheduleCatchup = "none" | "latest" | "all";

/** A task a schedule fired, as `Schedule.last_runs` lists it. */
export interface ScheduleRun {
  task_id: string;
  /** The tick it was fired for (RFC 3339). */
  scheduled_for: string;
  /** When it was submitted (RFC 3339). */
  fired_at: string;
  /** The task's status; `null` once the task is gone. */
  status: TaskStatus | null;
  [key: string]: unknown;
}

/**
 * A cron schedule as `GET /api/v1/schedules/{name}` returns it (field names as on the wire):
 * every tick of `cron` in `timezone` submits a task of `agent` with `input`, owned by `owner`
 * (who created or last replaced it).
 */
export interface Schedule {
  name: string;
  agent: string;
  input: unknown;
  /** 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first. */
  cron: string;
  /** An IANA time zone (`UTC`, `Europe/Berlin`). */
  timezone: string;
  overlap: ScheduleOverlap;
  catchup: ScheduleCatchup;
  paused: boolean;
  owner: string | null;
  created_at: string;
  updated_at: string;
  /** The next 5 fire times (RFC 3339); empty while paused. */
  next_runs: string[];
  /** The latest tasks it fired, newest first. */
  last_runs: ScheduleRun[];
  [key: string]: unknown;
}

/** What `triggerSchedule` answers: the task it submitted and the time it stands for. */
export interface ScheduleTriggered {
  task_id: string;
  schedule: string;
  /** The moment of the trigger (RFC 3339), also the task's `scheduled_for`. */
  scheduled_for: string;
  [key: string]: unknown;
}

/**
 * The optional parts of a schedule (`createSchedule`, `updateSchedule`). Left out, each takes
 * the server's default: `input` `{}`, `timezone` `UTC`, `overlap` `allow`, `catchup` `none`,
 * `paused` `false`.
 */
export interface ScheduleOptions {
  /** The input of every task it fires. */
  input?: unknown;
  timezone?: string;
  overlap?: ScheduleOverlap;
  catchup?: ScheduleCatchup;
  paused?: boolean;
}

/**
 * One event of a task (`kind`: status, log, progress, partial, result, error, step_finished,
 * waiting, resumed, signal_received).
 */
export interface TaskEvent {
  task_id: string;
  seq: number;
  agent: string;
  at: string;
  kind:
    | "status"
    | "log"
    | "progress"
    | "partial"
    | "result"
    | "error"
    | "step_finished"
    | "waiting"
    | "resumed"
    | "signal_received"
    | (string & {});
  status?: TaskStatus;
  attempt?: number;
  level?: string;
  message?: string;
  progress?: number;
  data?: unknown;
  output?: unknown;
  error?: TaskErrorInfo;
  /** `waiting`: what the task waits for. */
  wait?: TaskWait;
  /** `resumed`: why the wait ended (`time`, `signal`, `children` or `timeout`). */
  reason?: string;
  /** `signal_received`: the signal's payload (`name` is the signal's name). */
  payload?: unknown;
  cached?: boolean;
  fallback_task_id?: string | null;
  [key: string]: unknown;
}

export interface ClientOptions {
  /** The server's base URL, `http(s)://host:port`. */
  url: string;
  /** An API key (`sy_…`) with `submit` and/or `read`. */
  apiKey?: string;
  /** An access token (JWT from login); used when no `apiKey` is given. */
  token?: string;
  /**
   * Where WebSocket tickets come from (`POST /api/v1/auth/ws-ticket`, single use, valid 30 s):
   * `follow()` then authenticates with `?ticket=` instead of sending the token. Called once per
   * connection. With only a ticket source, the Client can follow but not call REST.
   */
  ticket?: () => string | Promise<string>;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface SubmitOptions {
  /** Wait up to this many seconds for the task to finish (the server caps it, 60 s by default). */
  wait?: number;
  priority?: number;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
  /** Run no earlier than this time (RFC 3339 or a Date). */
  runAt?: string | Date;
  /** Submitting the same key again within the window returns the first task. */
  idempotencyKey?: string;
  /** Make the task a child of this task. */
  parentId?: string;
  /**
   * The task's flow key (1-256 bytes): tasks of one key share the agent's `concurrency_per_key`
   * and per-key rate limit, and dispatch takes turns between keys. Overrides the agent's
   * `concurrency_key` pointer.
   */
  concurrencyKey?: string;
}

/**
 * What `submitBatch` applies to every task of the batch: no `wait`, and no `idempotencyKey`
 * (one key on every task would collapse the batch to its first task; a key a JavaScript
 * caller passes anyway is dropped).
 */
export type BatchSubmitOptions = Omit<SubmitOptions, "wait" | "idempotencyKey">;

export interface FollowOptions {
  /** Resume after this sequence number (events with a larger `seq` only). */
  since?: number;
  /** Longest pause between reconnection attempts, in seconds (default 10). */
  maxBackoff?: number;
  /** Stops following (the iterator ends). */
  signal?: AbortSignal;
}

/** Whether no more events follow this one. */
export function isFinalEvent(event: TaskEvent): boolean {
  if (event.kind === "result") return true;
  if (event.kind === "error") return event.status === "failed" || event.status === "dead";
  if (event.kind === "status") {
    return ["succeeded", "failed", "dead", "cancelled"].includes(String(event.status));
  }
  return false;
}

/**
 * Submits, reads, cancels and follows tasks. Works in Node ≥ 20 and in browsers (it needs
 * only `fetch` and a WebSocket).
 */
export class Client {
  readonly url: string;
  readonly #credential: string | undefined;
  readonly #ticket: (() => string | Promise<string>) | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    const credential = options.apiKey ?? options.token;
    if (!credential && !options.ticket) throw new TypeError("Client needs an apiKey, a token or a ticket source");
    this.#ticket = options.ticket;
    wsUrl(options.url, ""); // validates the URL
    this.url = options.url.replace(/\/+$/, "");
    this.#credential = credential;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Submits a task; with `wait`, answers when it finished (or when the wait ended). */
  async submit(agent: string, input: unknown, options: SubmitOptions = {}): Promise<Task> {
    const query = options.wait !== undefined ? `?wait=${waitParam(options.wait)}` : "";
    return this.#request<Task>("POST", `/api/v1/tasks${query}`, submitBody(agent, input, options));
  }

  /** Submits many tasks of one agent in one transaction: all are accepted or none. */
  async submitBatch(agent: string, inputs: unknown[], options: BatchSubmitOptions = {}): Promise<Task[]> {
    const tasks = inputs.map((input) => submitBody(agent, input, { ...options, idempotencyKey: undefined }));
    const answer = await this.#request<{ items: Task[] }>("POST", "/api/v1/tasks/batch", { tasks });
    return answer.items;
  }

  async get(taskId: string): Promise<Task> {
    return this.#request<Task>("GET", `/api/v1/tasks/${encodeURIComponent(taskId)}`);
  }

  /** The task's durable steps, in the order they were first recorded. */
  async steps(taskId: string): Promise<Step[]> {
    const page = await this.#request<{ items: Step[] }>("GET", `/api/v1/tasks/${encodeURIComponent(taskId)}/steps`);
    return page.items;
  }

  /** Cancels a task (and its unfinished child tasks): a queued or waiting one at once, a running one after its worker stops. */
  async cancel(taskId: string): Promise<Task> {
    return this.#request<Task>("POST", `/api/v1/tasks/${encodeURIComponent(taskId)}/cancel`);
  }

  /**
   * Sends the signal `name` to a task, with `payload` (any JSON; `undefined` is sent as `null`).
   * A task waiting for it (`ctx.waitForSignal(name)`) is queued again and gets the payload;
   * otherwise the signal is kept for the task's next wait for it. Rejects with a
   * `SwitchyardError`: `task_not_found` (404), `task_finished` (409), `signal_too_large`.
   */
  async signal(taskId: string, name: string, payload?: unknown): Promise<SignalResult> {
    const path = `/api/v1/tasks/${encodeURIComponent(taskId)}/signals/${encodeURIComponent(name)}`;
    return this.#request<SignalResult>("POST", path, payload === undefined ? null : payload);
  }

  /** Runs a finished task (failed, dead, cancelled) again. */
  async retry(taskId: string): Promise<Task> {
    return this.#request<Task>("POST", `/api/v1/tasks/${encodeURIComponent(taskId)}/retry`);
  }

  /**
   * Creates a schedule (`POST /api/v1/schedules`): every tick of `cron` (5 fields, or 6 with
   * seconds first) submits a task of `agent`. Needs the ManageAgents permission (an admin).
   * Rejects with a `SwitchyardError`: `invalid_schedule` (422: a bad name, cron or time zone;
   * the message names it), `unknown_agent` (422), `schedule_exists` (409), `forbidden` (403).
   */
  async createSchedule(name: string, agent: string, cron: string, options: ScheduleOptions = {}): Promise<Schedule> {
    return this.#request<Schedule>("POST", "/api/v1/schedules", { name, ...scheduleBody(agent, cron, options) });
  }

  /** Every schedule, by name. */
  async listSchedules(): Promise<Schedule[]> {
    const page = await this.#request<{ items: Schedule[] }>("GET", "/api/v1/schedules");
    return page.items;
  }

  /** One schedule, with its next 5 fire times and its latest tasks; `schedule_not_found` (404). */
  async getSchedule(name: string): Promise<Schedule> {
    return this.#request<Schedule>("GET", schedulePath(name));
  }

  /**
   * Replaces a schedule (`PUT /api/v1/schedules/{name}`): as in `createSchedule`, an option left
   * out takes the server's default, not its stored value. The caller becomes its owner.
   * `schedule_not_found` (404), and what `createSchedule` rejects with.
   */
  async updateSchedule(name: string, agent: string, cron: string, options: ScheduleOptions = {}): Promise<Schedule> {
    return this.#request<Schedule>("PUT", schedulePath(name), scheduleBody(agent, cron, options));
  }

  /**
   * Pauses a schedule: no ticks until `resumeSchedule` (`triggerSchedule` still runs it). Reads
   * the schedule and replaces it with `paused` set; one already paused is returned as it is.
   */
  async pauseSchedule(name: string): Promise<Schedule> {
    return this.#setPaused(name, true);
  }

  /**
   * Resumes a paused schedule from its next tick (the ticks of the pause never fire). Reads the schedule
   * and replaces it with `paused` cleared; one not paused is returned as it is.
   */
  async resumeSchedule(name: string): Promise<Schedule> {
    return this.#setPaused(name, false);
  }

  async #setPaused(name: string, paused: boolean): Promise<Schedule> {
    const current = await this.getSchedule(name);
    if (current.paused === paused) return current;
    const { agent, cron, input, timezone, overlap, catchup } = current;
    return this.#request<Schedule>("PUT", schedulePath(name), { agent, cron, input, timezone, overlap, catchup, paused });
  }

  /** Deletes a schedule; the tasks it fired stay. `schedule_not_found` (404). */
  async deleteSchedule(name: string): Promise<void> {
    await this.#request<null>("DELETE", schedulePath(name));
  }

  /**
   * Submits the schedule's task now, outside its timetable (a paused schedule too); the task
   * carries `schedule` and `scheduled_for` like a fired one.
   */
  async triggerSchedule(name: string): Promise<ScheduleTriggered> {
    return this.#request<ScheduleTriggered>("POST", `${schedulePath(name)}/trigger`);
  }

  /**
   * The next 5 fire times (RFC 3339) of `cron` in `timezone` (default `UTC`), creating nothing.
   * `invalid_schedule` (422) for a bad expression or time zone.
   */
  async previewSchedule(cron: string, timezone?: string): Promise<string[]> {
    const query = new URLSearchParams({ cron });
    if (timezone !== undefined) query.set("timezone", timezone);
    const answer = await this.#request<{ next_runs: string[] }>("GET", `/api/v1/schedules/preview?${query.toString()}`);
    return answer.next_runs;
  }

  /** A single-use WebSocket ticket (valid 30 s), e.g. to hand to a browser. */
  async wsTicket(): Promise<string> {
    const answer = await this.#request<{ ticket: string }>("POST", "/api/v1/auth/ws-ticket");
    return answer.ticket;
  }

  /**
   * The events of one task over the client WebSocket, from its current state (or after
   * `since`) to its final event. A dropped connection is resumed after the last `seq` seen:
   * no event is lost or repeated.
   */
  async *follow(taskId: string, options: FollowOptions = {}): AsyncGenerator<TaskEvent, void, undefined> {
    let lastSeq = options.since;
    const maxBackoffMs = (options.maxBackoff ?? 10) * 1000;
    let backoffMs = 100;
    for (;;) {
      if (options.signal?.aborted) return;
      let stream: EventStream;
      try {
        const auth = this.#ticket ? { ticket: await this.#ticket() } : { token: this.#credential ?? "" };
        stream = await EventStream.open(this.url, auth, taskId, lastSeq);
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        await sleep(jitter(backoffMs), options.signal);
        backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
        continue;
      }
      const onAbort = () => stream.close();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        for (;;) {
          const item = await stream.next();
          if (item === null) break; // connection lost: resume
          backoffMs = 100;
          if (lastSeq !== undefined && item.seq <= lastSeq) continue;
          lastSeq = item.seq;
          yield item;
          if (isFinalEvent(item)) return;
        }
      } finally {
        options.signal?.removeEventListener("abort", onAbort);
        stream.close();
      }
      if (options.signal?.aborted) return;
      await sleep(jitter(backoffMs), options.signal);
      backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
    }
  }

  /**
   * Uploads a file (`POST /api/v1/files`, needs `submit`) and answers its `FileInfo`. `data` is
   * bytes, a `Blob`, a `ReadableStream`, or a string: the path of a file, streamed from disk
   * (Node). `name` defaults to a path's base name (or a `File`'s name); `contentType`, left out,
   * is guessed by the server from the name. `file_too_large` / `quota_exceeded` (413),
   * `invalid_file` (422).
   */
  async uploadFile(data: UploadData, name?: string, contentType?: string): Promise<FileInfo> {
    const upload = await uploadBody(data);
    const fileName = name ?? upload.name;
    const query = fileName !== undefined ? `?name=${encodeURIComponent(fileName)}` : "";
    return postUpload(this.#fetch, `${this.url}/api/v1/files${query}`, upload, this.#auth(), contentType);
  }

  /** A file's `FileInfo`; `file_not_found` (404) for an unknown file or someone else's. */
  async getFile(fileId: string): Promise<FileInfo> {
    return this.#request<FileInfo>("GET", filePath(fileId));
  }

  /** One page of files, newest first (`next_cursor` leads to the next); `task` lists a task's artifacts. */
  async listFiles(options: ListFilesOptions = {}): Promise<FilePage> {
    const query = new URLSearchParams();
    if (options.task !== undefined) query.set("task", options.task);
    if (options.owner !== undefined) query.set("owner", options.owner);
    if (options.cursor !== undefined) query.set("cursor", options.cursor);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    const q = query.toString();
    return this.#request<FilePage>("GET", `/api/v1/files${q ? `?${q}` : ""}`);
  }

  /** A file's bytes. */
  async downloadFile(fileId: string): Promise<Uint8Array> {
    return readBytes(await this.#send("GET", `${filePath(fileId)}/content`, {}));
  }

  /** Streams a file's bytes to `path` (Node), never holding them whole; a partial file is removed. */
  async downloadFileTo(fileId: string, path: string): Promise<void> {
    await writeTo(await this.#send("GET", `${filePath(fileId)}/content`, {}), path);
  }

  /** Deletes a file (its owner or an admin). */
  async deleteFile(fileId: string): Promise<void> {
    await this.#request<null>("DELETE", filePath(fileId));
  }

  /** The files the task's agent uploaded (`ctx.upload`). */
  async taskArtifacts(taskId: string): Promise<FileInfo[]> {
    const page = await this.#request<{ items: FileInfo[] }>("GET", `/api/v1/tasks/${encodeURIComponent(taskId)}/artifacts`);
    return page.items;
  }

  #auth(): Record<string, string> {
    if (this.#credential === undefined) {
      throw new TypeError("this Client has only a ticket source; REST calls need an apiKey or a token");
    }
    return { authorization: `Bearer ${this.#credential}` };
  }

  async #send(method: string, path: string, init: RequestInit): Promise<Response> {
    const headers = { ...this.#auth(), ...(init.headers as Record<string, string> | undefined) };
    return send(this.#fetch, `${method} ${path}`, this.url + path, { ...init, method, headers });
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = {};
    if (body !== undefined) {
      init.headers = { "content-type": "application/json" };
      init.body = JSON.stringify(body);
    }
    const response = await this.#send(method, path, init);
    if (response.status === 204) return null as T;
    return (await response.json()) as T;
  }
}

function waitParam(seconds: number): string {
  if (!(seconds >= 0)) throw new RangeError("wait is in seconds and must be >= 0");
  return `${Math.round(seconds * 1000)}ms`;
}

function submitBody(agent: string, input: unknown, options: SubmitOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { agent, input: input ?? {} };
  if (options.priority !== undefined) body["priority"] = options.priority;
  if (options.delayMs !== undefined) body["delay_ms"] = options.delayMs;
  if (options.runAt !== undefined) {
    body["run_at"] = options.runAt instanceof Date ? options.runAt.toISOString() : options.runAt;
  }
  if (options.idempotencyKey !== undefined) body["idempotency_key"] = options.idempotencyKey;
  if (options.parentId !== undefined) body["parent_id"] = options.parentId;
  if (options.concurrencyKey !== undefined) body["concurrency_key"] = options.concurrencyKey;
  return body;
}

function filePath(fileId: string): string {
  return `/api/v1/files/${encodeURIComponent(fileId)}`;
}

function schedulePath(name: string): string {
  return `/api/v1/schedules/${encodeURIComponent(name)}`;
}

function scheduleBody(agent: string, cron: string, options: ScheduleOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { agent, cron };
  if (options.input !== undefined) body["input"] = options.input;
  if (options.timezone !== undefined) body["timezone"] = options.timezone;
  if (options.overlap !== undefined) body["overlap"] = options.overlap;
  if (options.catchup !== undefined) body["catchup"] = options.catchup;
  if (options.paused !== undefined) body["paused"] = options.paused;
  return body;
}

/** One client WebSocket subscribed to one task; `next()` is `null` once the connection is gone. */
class EventStream {
  #socket: Socket;
  #queue: (TaskEvent | null | SwitchyardError)[] = [];
  #waiter: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.onMessage = (text) => this.#receive(text);
    socket.onClose = () => this.#push(null);
  }

  static async open(
    base: string,
    auth: { token: string } | { ticket: string },
    taskId: string,
    since: number | undefined,
  ): Promise<EventStream> {
    const path = "ticket" in auth ? `/api/v1/ws?ticket=${encodeURIComponent(auth.ticket)}` : "/api/v1/ws";
    const socket = await openSocket(wsUrl(base, path), {}, 15_000);
    const stream = new EventStream(socket);
    // The `auth` message works in browsers too, which cannot set headers.
    if ("token" in auth) socket.send(JSON.stringify({ type: "auth", token: auth.token }));
    const subscribe: Record<string, unknown> = { type: "subscribe", task_id: taskId };
    if (since !== undefined) subscribe["since"] = since;
    socket.send(JSON.stringify(subscribe));
    return stream;
  }

  #receive(text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg["type"] === "event") {
      this.#push(msg as unknown as TaskEvent);
    } else if (msg["type"] === "error") {
      const code = textOr(msg["code"], "unknown_error");
      // A slow consumer is cut off and may resume; everything else is the caller's problem.
      if (code === "slow_consumer") return;
      this.#push(new SwitchyardError(code, textOr(msg["message"], code)));
    }
  }

  #push(item: TaskEvent | null | SwitchyardError): void {
    this.#queue.push(item);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async next(): Promise<TaskEvent | null> {
    while (this.#queue.length === 0) {
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
    const item = this.#queue.shift()!;
    if (item instanceof SwitchyardError) throw item;
    if (item === null) this.#queue.unshift(null);
    return item;
  }

  close(): void {
    try {
      this.#socket.close(1000);
    } catch {
      // already closed
    }
    this.#push(null);
  }
}
