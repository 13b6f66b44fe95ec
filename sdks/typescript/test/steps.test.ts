// Durable steps (`ctx.step`) against the real server: results memoized across retries, failed
// steps run again, refusals by the server, and the step listing (`GET /api/v1/tasks/{id}/steps`).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, PermanentError, RetryableError, type AgentOptions, type Handler, type TaskEvent } from "../src/index.js";
import { agentName, serveAgent, startProxy, startServer, finished, type TestServer } from "./harness.js";

/** Retries come soon, so the tests do not wait for the default backoff. */
const FAST_RETRY: AgentOptions = { retry: { maxAttempts: 3, baseMs: 50, capMs: 100 } };
let server: TestServer;
let client: Client;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ url: server.url, apiKey: server.clientKey });
});
afterAll(async () => {
  await server?.stop();
});

/** One entry of `GET /api/v1/tasks/{id}/steps`. */
interface StepRow {
  name: string;
  status: string;
  attempt: number;
  output?: unknown;
  error?: { message?: string; class?: string; code?: string } | null;
  [key: string]: unknown;
}

async function steps(id: string, on = server): Promise<StepRow[]> {
  const r = await on.rest<{ items: StepRow[] }>("GET", `/api/v1/tasks/${id}/steps`);
  expect(r.status).toBe(200);
  return r.body.items;
}

async function events(id: string): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  for await (const e of client.follow(id, { since: 0 })) out.push(e);
  return out;
}

/** Runs `body` with a worker serving one agent, then drains it. */
function withWorker<Input>(
  name: string,
  options: AgentOptions,
  handler: Handler<Input>,
  body: () => Promise<void>,
  on = server,
  url = on.url,
): Promise<void> {
  return serveAgent(on, name, options, handler, body, { url, slots: 8, maxBackoff: 1 });
}

describe("durable steps", () => {
  it("memoizes step results across a retry: attempt 2 runs only the step it has not run", async () => {
    const name = agentName("steps-memo");
    const runs = { a: 0, b: 0, c: 0 };
    await withWorker(
      name,
      FAST_RETRY,
      async (ctx) => {
        const a = await ctx.step("a", () => {
          runs.a += 1;
          return { letter: "A", attempt: ctx.attempt };
        });
        const b = await ctx.step("b", async () => {
          runs.b += 1;
          await new Promise((r) => setTimeout(r, 5));
          return ["B", ctx.attempt];
        });
        if (ctx.attempt === 1) throw new RetryableError("failing after b", { code: "after_b" });
        const c = await ctx.step("c", () => {
          runs.c += 1;
          return `C${ctx.attempt}`;
        });
        return { a, b, c };
      },
      async () => {
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("succeeded");
        expect(task.attempts.length).toBe(2);
        expect(task.attempts[0].error?.code).toBe("after_b");
        expect(task.output).toEqual({ a: { letter: "A", attempt: 1 }, b: ["B", 1], c: "C2" });
        expect(runs).toEqual({ a: 1, b: 1, c: 1 });
        const listed = await steps(task.id);
        expect(await client.steps(task.id)).toEqual(listed);
        expect(listed.map((s) => [s.name, s.status, s.attempt])).toEqual([
          ["a", "succeeded", 1],
          ["b", "succeeded", 1],
          ["c", "succeeded", 2],
        ]);
        const byName = Object.fromEntries(listed.map((s) => [s.name, s.output]));
        expect(byName).toEqual({ a: { letter: "A", attempt: 1 }, b: ["B", 1], c: "C2" });
        const finishedSteps = (await events(task.id)).filter((e) => e.kind === "step_finished");
        expect(finishedSteps.map((e) => [e["name"], e["status"], e.attempt])).toEqual([
          ["a", "succeeded", 1],
          ["b", "succeeded", 1],
          ["c", "succeeded", 2],
        ]);
      },
    );
  });

  it("records a step that throws, rethrows the original error, and runs the step again on the retry", async () => {
    const name = agentName("steps-flaky");
    const seen: unknown[] = [];
    const thrown: Error[] = [];
    let runs = 0;
    await withWorker(
      name,
      FAST_RETRY,
      async (ctx) => {
        try {
          return await ctx.step("flaky", () => {
            runs += 1;
            if (ctx.attempt === 1) {
              const e = new Error("upstream went away");
              thrown.push(e);
              throw e;
            }
            return { ok: ctx.attempt };
          });
        } catch (e) {
          seen.push(e);
          throw e;
        }
      },
      async () => {
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("succeeded");
        expect(task.output).toEqual({ ok: 2 });
        expect(runs).toBe(2);
        // The handler saw the very error its step threw, and the attempt failed by it as usual.
        expect(seen.length).toBe(1);
        expect(seen[0]).toBe(thrown[0]);
        expect(task.attempts[0].error?.class).toBe("retryable");
        expect(task.attempts[0].error?.message).toBe("upstream went away");
        const listed = await steps(task.id);
        expect(listed.map((s) => [s.name, s.status, s.attempt])).toEqual([["flaky", "succeeded", 2]]);
        expect(listed[0].output).toEqual({ ok: 2 });
        // The failure was recorded on the step (an unexpected exception: retryable, `exception`).
        const stepEvents = (await events(task.id)).filter((e) => e.kind === "step_finished");
        expect(stepEvents.map((e) => [e["name"], e["status"], e.attempt])).toEqual([
          ["flaky", "failed", 1],
          ["flaky", "succeeded", 2],
        ]);
        expect(stepEvents[0].error).toMatchObject({ message: "upstream went away", class: "retryable", code: "exception" });
      },
    );
  });

  it("sends a step error's class and code from the SDK's error classes", async () => {
    const name = agentName("steps-classed");
    await withWorker(
      name,
      FAST_RETRY,
      async (ctx) => ctx.step("refuse", () => {
        throw new PermanentError("no such account", { code: "no_account" });
      }),
      async () => {
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("dead");
        expect(task.attempts.length).toBe(1);
        expect(task.error).toMatchObject({ class: "permanent", code: "no_account", message: "no such account" });
        const listed = await steps(task.id);
        expect(listed.map((s) => [s.name, s.status, s.attempt])).toEqual([["refuse", "failed", 1]]);
        expect(listed[0].error).toMatchObject({ message: "no such account", class: "permanent", code: "no_account" });
      },
    );
  });

  it("runs a step called twice with one name in a run once, and returns the first result", async () => {
    const name = agentName("steps-twice");
    let runs = 0;
    await withWorker(
      name,
      {},
      async (ctx) => {
        const first = await ctx.step("once", () => {
          runs += 1;
          return { n: runs };
        });
        const second = await ctx.step("once", () => {
          runs += 1;
          return { n: runs };
        });
        // Two calls at once: the second waits for the first and resolves to its result.
        const [x, y] = await Promise.all([
          ctx.step("together", () => {
            runs += 1;
            return "x";
          }),
          ctx.step("together", () => {
            runs += 1;
            return "y";
          }),
        ]);
        // A void step stores null; a Date comes back as JSON carries it, as on a later run.
        const nothing = await ctx.step("void", () => undefined);
        const when = await ctx.step("date", () => new Date(0));
        return { first, second, x, y, nothing, when };
      },
      async () => {
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("succeeded");
        expect(task.output).toEqual({ first: { n: 1 }, second: { n: 1 }, x: "x", y: "x", nothing: null, when: "1970-01-01T00:00:00.000Z" });
        expect(runs).toBe(2);
        const listed = await steps(task.id);
        expect(listed.map((s) => s.name).sort()).toEqual(["date", "once", "together", "void"]);
      },
    );
  });

  it("fails the task permanently when a step's output is over the server's limit", async () => {
    const small = await startServer({ SWITCHYARD__QUEUE__MAX_STEP_OUTPUT_BYTES: "1024" });
    const smallClient = new Client({ url: small.url, apiKey: small.clientKey });
    const name = agentName("steps-big");
    const seen: unknown[] = [];
    let after = 0;
    try {
      await withWorker(
        name,
        FAST_RETRY,
        async (ctx) => {
          await ctx.step("small", () => "fits");
          try {
            await ctx.step("big", () => ({ text: "x".repeat(2048) }));
          } catch (e) {
            seen.push(e);
            throw e;
          }
          after += 1;
          return null;
        },
        async () => {
          const task = await finished(smallClient, (await smallClient.submit(name, {})).id);
          expect(task.status).toBe("dead");
          expect(task.attempts.length).toBe(1);
          expect(task.error?.class).toBe("permanent");
          expect(task.error?.code).toBe("step_output_too_large");
          expect(after).toBe(0);
          expect(seen[0]).toBeInstanceOf(PermanentError);
          expect((seen[0] as PermanentError).code).toBe("step_output_too_large");
          const listed = await steps(task.id, small);
          expect(listed.filter((s) => s.status === "succeeded").map((s) => s.name)).toEqual(["small"]);
        },
        small,
      );
    } finally {
      await small.stop();
    }
  });

  it("refuses a result that is not JSON without sending it, and passes on the server's invalid_step", async () => {
    const name = agentName("steps-invalid");
    await withWorker(
      name,
      FAST_RETRY,
      async (ctx, input: { mode: string }) => {
        if (input.mode === "bigint") return ctx.step("bigint", () => ({ n: 10n }));
        return ctx.step("", () => 1);
      },
      async () => {
        const bigint = await finished(client, (await client.submit(name, { mode: "bigint" })).id);
        expect(bigint.status).toBe("dead");
        expect(bigint.attempts.length).toBe(1);
        expect(bigint.error).toMatchObject({ class: "permanent", code: "invalid_step_output" });
        expect(await steps(bigint.id)).toEqual([]);

        const unnamed = await finished(client, (await client.submit(name, { mode: "empty-name" })).id);
        expect(unnamed.status).toBe("dead");
        expect(unnamed.attempts.length).toBe(1);
        expect(unnamed.error).toMatchObject({ class: "permanent", code: "invalid_step" });
      },
    );
  });

  it("matches step_recorded answers to the waiting steps of many tasks on one connection", async () => {
    const name = agentName("steps-many");
    await withWorker(
      name,
      {},
      async (ctx, input: { n: number }) => {
        const parts = await Promise.all(
          ["p", "q", "r"].map((s) => ctx.step(s, async () => {
            await new Promise((r) => setTimeout(r, Math.random() * 20));
            return `${s}${input.n}`;
          })),
        );
        return parts.join(",");
      },
      async () => {
        const tasks = await client.submitBatch(name, Array.from({ length: 24 }, (_, n) => ({ n })));
        const done = await Promise.all(tasks.map((t) => finished(client, t.id)));
        expect(done.map((t) => t.status)).toEqual(tasks.map(() => "succeeded"));
        expect(done.map((t) => t.output)).toEqual(tasks.map((_, n) => `p${n},q${n},r${n}`));
      },
    );
  });

  it("ends a step whose attempt lost its connection with the abort reason, and runs it again on the retry", async () => {
    const proxy = await startProxy(server.url);
    const name = agentName("steps-lost");
    let runs = 0;
    let entered!: () => void;
    const enteredP = new Promise<void>((r) => (entered = r));
    const outcomes: string[] = [];
    try {
      await withWorker(
        name,
        FAST_RETRY,
        async (ctx) => {
          try {
            return await ctx.step("slow", async () => {
              runs += 1;
              if (runs === 1) {
                // Finishes only once the connection is gone: the result cannot be recorded.
                const lost = new Promise((r) => ctx.signal.addEventListener("abort", r));
                entered();
                await lost;
              }
              return { run: runs };
            });
          } catch (e) {
            outcomes.push(e instanceof DOMException ? e.name : String(e));
            throw e;
          }
        },
        async () => {
          const task = await client.submit(name, {});
          await enteredP;
          expect(proxy.cutAll()).toBeGreaterThan(0);
          const done = await finished(client, task.id);
          expect(done.status).toBe("succeeded");
          expect(done.output).toEqual({ run: 2 });
          expect(runs).toBe(2);
          expect(outcomes).toEqual(["AbortError"]);
          expect(done.attempts[0].error?.code).toBe("worker_lost");
          const listed = await steps(task.id);
          expect(listed.map((s) => [s.name, s.status, s.attempt])).toEqual([["slow", "succeeded", 2]]);
        },
        server,
        proxy.url,
      );
    } finally {
      proxy.close();
    }
  });
});
