// The TypeScript SDK's worker for the protocol conformance suite (sdks/conformance/): serves the
// same agents as crates/sdk/src/bin/switchyard-conformance-worker.rs and
// sdks/python/examples/conformance_worker.py, with the same names, schemas, timeouts and retry policies.
//
//   npm run build
//   SWITCHYARD_API_KEY=sy_… WORKER_NAME=ts-a node build/examples/conformance-worker.js URL
//
// Environment: SWITCHYARD_API_KEY (scope `worker`, required), WORKER_NAME, WORKER_SLOTS
// (default 4). Drains on SIGTERM or SIGINT: takes nothing new, finishes the running tasks,
// exits 0.
import {
  ChildFailure,
  PermanentError,
  RateLimitedError,
  RetryableError,
  WaitTimeoutError,
  Worker,
  type RetryPolicy,
} from "@switchyard/sdk";

/** `conf-sleep`'s per-attempt timeout; the scenarios' sleeps stay well below it, except the
 * timeout scenario's. */
const SLEEP_TIMEOUT_MS = 6000;

/** The retry policy `conf-fail`, `conf-sleep` and `conf-steps` declare: one retry, soon. */
const SCENARIO_RETRY: RetryPolicy = { maxAttempts: 2, baseMs: 100, capMs: 1000 };

const url = process.argv[2] ?? "http://127.0.0.1:8080";
const apiKey = process.env["SWITCHYARD_API_KEY"];
if (!apiKey) {
  console.error("set SWITCHYARD_API_KEY to an API key with the worker scope");
  process.exit(2);
}
const workerName = process.env["WORKER_NAME"] ?? "";
const worker = new Worker({
  url,
  apiKey,
  slots: Number(process.env["WORKER_SLOTS"] ?? 4),
  ...(workerName ? { name: workerName } : {}),
});

function objectSchema(properties: Record<string, unknown>, required: string[]): Record<string, unknown> {
  return { type: "object", properties, required };
}

worker.agent(
  "conf-echo",
  { description: "Returns its input.", inputSchema: objectSchema({ message: { type: "string" } }, ["message"]) },
  (_ctx, input: unknown) => ({ echo: input, worker: workerName }),
);

worker.agent(
  "conf-stream",
  {
    description: "Streams `parts` as partial output, with logs and progress.",
    inputSchema: objectSchema({ parts: { type: "array" } }, ["parts"]),
  },
  async (ctx, input: { parts?: unknown }) => {
    const parts = input.parts;
    if (!Array.isArray(parts)) throw new PermanentError("`parts` must be an array");
    await ctx.log("info", `streaming ${parts.length} parts`);
    for (const [i, part] of parts.entries()) {
      await ctx.partial(part);
      await ctx.progress((i + 1) / parts.length, `part ${i + 1}`);
    }
    await ctx.log("warn", "stream finished");
    return { parts: parts.length, worker: workerName };
  },
);

worker.agent(
  "conf-fail",
  {
    description: "Fails with the error class named in `class`.",
    inputSchema: objectSchema(
      {
        class: { enum: ["retryable", "permanent", "rate_limited"] },
        message: { type: "string" },
        code: { type: "string" },
        retry_after_ms: { type: "integer", minimum: 0 },
      },
      ["class"],
    ),
    retry: SCENARIO_RETRY,
  },
  (_ctx, input: { class?: string; message?: string; code?: string; retry_after_ms?: number }) => {
    const message = input.message ?? "conformance failure";
    const code = input.code !== undefined ? { code: input.code } : {};
    switch (input.class) {
      case "retryable":
        throw new RetryableError(message, code);
      case "permanent":
        throw new PermanentError(message, code);
      case "rate_limited":
        throw new RateLimitedError(message, {
          ...code,
          ...(input.retry_after_ms !== undefined ? { retryAfter: input.retry_after_ms / 1000 } : {}),
        });
      default:
        throw new PermanentError(`unknown class ${JSON.stringify(input.class)}`);
    }
  },
);

worker.agent(
  "conf-sleep",
  {
    description: "Sleeps `ms` milliseconds, cooperatively cancellable.",
    inputSchema: objectSchema({ ms: { type: "integer", minimum: 0 } }, ["ms"]),
    timeoutMs: SLEEP_TIMEOUT_MS,
    retry: SCENARIO_RETRY,
  },
  async (ctx, input: { ms: number }) => {
    await ctx.log("info", `sleeping ${input.ms} ms`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, input.ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (ctx.cancelled) throw new RetryableError("cancelled while sleeping", { code: "cancelled" });
    return { slept_ms: input.ms, worker: workerName };
  },
);

worker.agent(
  "conf-steps",
  {
    description:
      "Runs the durable steps named in `steps`; fails once after `fail_after` and pauses before `pause_in` on attempt 1.",
    inputSchema: objectSchema(
      {
        steps: { type: "array", items: { type: "string" } },
        fail_after: { type: "string" },
        pause_in: { type: "string" },
      },
      ["steps"],
    ),
    retry: SCENARIO_RETRY,
  },
  async (ctx, input: { steps: string[]; fail_after?: string; pause_in?: string }) => {
    const results: unknown[] = [];
    for (const name of input.steps) {
      if (name === input.pause_in && ctx.attempt === 1) {
        // Long enough for the scenario to SIGKILL this worker here.
        await ctx.log("info", `pausing in ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 30_000));
      }
      results.push(await ctx.step(name, () => ({ step: name, run: ctx.attempt })));
      if (name === input.fail_after && ctx.attempt === 1) {
        throw new RetryableError(`failing after ${name}`, { code: "after_step" });
      }
    }
    return { results, worker: workerName };
  },
);

worker.agent(
  "conf-wait",
  {
    description: "Sleeps durably `sleep_ms`, then waits for the signal `signal` (up to `timeout_ms`).",
    inputSchema: {
      type: "object",
      properties: {
        sleep_ms: { type: "integer", minimum: 0 },
        signal: { type: "string" },
        timeout_ms: { type: "integer", minimum: 0 },
      },
      additionalProperties: false,
    },
  },
  async (ctx, input: { sleep_ms?: number; signal?: string; timeout_ms?: number }) => {
    if (input.sleep_ms !== undefined) await ctx.sleep("nap", input.sleep_ms / 1000);
    let payload: unknown = null;
    let timedOut = false;
    if (input.signal !== undefined) {
      try {
        payload = await ctx.waitForSignal(input.signal, input.timeout_ms !== undefined ? { timeout: input.timeout_ms / 1000 } : {});
      } catch (e) {
        if (!(e instanceof WaitTimeoutError)) throw e;
        timedOut = true;
      }
    }
    return { slept: input.sleep_ms !== undefined, signal: payload, timed_out: timedOut, run: ctx.attempt };
  },
);

worker.agent(
  "conf-parent",
  {
    description: "Spawns a `conf-echo` child per message of `messages`, then joins them.",
    inputSchema: objectSchema({ messages: { type: "array", items: { type: "string" } } }, ["messages"]),
  },
  async (ctx, input: { messages: string[] }) => {
    const ids: string[] = [];
    for (const message of input.messages) ids.push(await ctx.spawn("conf-echo", { message }));
    const joined = await ctx.join(ids);
    const children = joined.map((child) => (child instanceof ChildFailure ? { failed: child.status } : child));
    return { children, ids };
  },
);

worker.agent(
  "conf-files",
  {
    description: "Reads the input file `doc`; stores it in upper case as `upper.txt`.",
    // A file reference (`{"$file": id}`), which the web UI fills with an upload.
    inputSchema: objectSchema(
      { doc: { type: "object", format: "file", required: ["$file"], properties: { $file: { type: "string" } } } },
      ["doc"],
    ),
  },
  async (ctx, input: { doc: { $file: string } }) => {
    const fileId = input.doc.$file;
    const content = new TextDecoder().decode(await ctx.download(fileId));
    const artifact = await ctx.upload("upper.txt", new TextEncoder().encode(content.toUpperCase()), "text/plain");
    return { name: ctx.files[fileId]?.name, content, artifact: { $file: artifact } };
  },
);

worker.run().then(
  () => {
    console.error("worker drained and stopped");
    process.exit(0);
  },
  (e: unknown) => {
    console.error(`worker stopped: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
