// Durable waits, signals and child tasks against the real server: a run that ends in a wait
// frees its slot and sends nothing more, the task runs again when the wait is over; signals
// before and after the wait; a signal wait's timeout; spawn and join, once per task.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChildFailure,
  ChildTaskFailed,
  Client,
  PermanentError,
  RetryableError,
  SwitchyardError,
  WaitTimeoutError,
  type AgentOptions,
  type Handler,
  type Task,
  type TaskEvent,
} from "../src/index.js";
import { agentName, serveAgent, startServer, until, finished, type TestServer } from "./harness.js";

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

async function waiting(id: string): Promise<Task> {
  return until(`task ${id} to wait`, async () => {
    const t = await client.get(id);
    return t.status === "waiting" ? t : undefined;
  });
}

async function events(id: string): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  for await (const e of client.follow(id, { since: 0 })) out.push(e);
  return out;
}

async function children(parentId: string): Promise<string[]> {
  const r = await server.rest<{ items: { id: string }[] }>("GET", `/api/v1/tasks?parent_id=${parentId}`);
  expect(r.status).toBe(200);
  return r.body.items.map((t) => t.id).sort();
}

/** What the worker logs: a result or message the server refused would show up here. */
function recordingLogger(): { warnings: string[]; logger: { info(): void; warn(m: string): void } } {
  const warnings: string[] = [];
  return { warnings, logger: { info() {}, warn: (m: string) => void warnings.push(m) } };
}

function withWorker<Input>(
  name: string,
  options: AgentOptions,
  handler: Handler<Input>,
  body: () => Promise<void>,
  worker: { slots?: number; logger?: { info(): void; warn(m: string): void } } = {},
): Promise<void> {
  return serveAgent(server, name, options, handler, body, { slots: 4, maxBackoff: 1, ...worker });
}

describe("durable waits", () => {
  it("ends the run at a sleep, frees the slot, sends nothing more, and resumes after the sleep", async () => {
    const name = agentName("wait-sleep");
    const { warnings, logger } = recordingLogger();
    const caught: unknown[] = [];
    const late: unknown[] = [];
    let aborted: unknown;
    await withWorker(
      name,
      {},
      async (ctx, input: { quick?: boolean }) => {
        if (input.quick) return { quick: ctx.attempt };
        try {
          await ctx.sleep("nap", 2);
        } catch (e) {
          // A handler that swallows the suspension: whatever it does now is not sent.
          caught.push(e);
          aborted = ctx.signal.reason;
          await ctx.log("info", "after the suspension");
          await ctx.step("late", () => 1).catch((e2: unknown) => late.push(e2));
          return { swallowed: true };
        }
        return { slept: true, run: ctx.attempt };
      },
      async () => {
        const task = await client.submit(name, {});
        const asleep = await waiting(task.id);
        expect(asleep.wait).toMatchObject({ kind: "sleep", name: "nap" });
        expect(typeof asleep.wait?.until).toBe("string");
        // The only slot is free while the task sleeps: another task runs meanwhile.
        const quick = await client.submit(name, { quick: true }, { wait: 10 });
        expect(quick.status).toBe("succeeded");
        expect((await client.get(task.id)).status).toBe("waiting");

        const done = await finished(client, task.id);
        expect(done.status).toBe("succeeded");
        expect(done.output).toEqual({ slept: true, run: 2 });
        expect(done.attempts.map((a) => a.status)).toEqual(["suspended", "succeeded"]);
        // The suspension is not an Error, it is the signal's abort reason, and what a step
        // started afterwards rejects with; nothing the handler did after it reached the server.
        expect(caught.length).toBe(1);
        expect(caught[0]).not.toBeInstanceOf(Error);
        expect(aborted).toBe(caught[0]);
        expect(late).toEqual([caught[0]]);
        expect(warnings).toEqual([]);
        const seen = await events(task.id);
        expect(seen.filter((e) => e.kind === "log")).toEqual([]);
        expect(seen.filter((e) => e.kind === "waiting")).toEqual([
          expect.objectContaining({ attempt: 1, wait: expect.objectContaining({ kind: "sleep", name: "nap" }) as unknown }),
        ]);
        expect(seen.filter((e) => e.kind === "resumed").map((e) => e.reason)).toEqual(["time"]);
        const steps = await client.steps(task.id);
        expect(steps.map((s) => [s.name, s.status, s.output])).toEqual([["nap", "succeeded", null]]);
      },
      { slots: 1, logger },
    );
  });

  it("sleeps until a time already passed without ending the run", async () => {
    const name = agentName("wait-until");
    await withWorker(
      name,
      {},
      async (ctx) => {
        await ctx.sleepUntil("past", new Date(Date.now() - 1000));
        await ctx.sleepUntil("past-ms", Date.now() - 1000);
        return { run: ctx.attempt };
      },
      async () => {
        const done = await finished(client, (await client.submit(name, {})).id);
        expect(done.status).toBe("succeeded");
        expect(done.output).toEqual({ run: 1 });
      },
    );
  });

  it("gets a signal sent after the wait began and one sent before it", async () => {
    const name = agentName("wait-signal");
    const sender = new Client({ url: server.url, apiKey: server.clientKey });
    await withWorker(
      name,
      {},
      async (ctx, input: { early?: unknown }) => {
        // Sent before the wait: kept for it, so the wait is over at once.
        if (input.early !== undefined) await sender.signal(ctx.taskId, "approval", input.early);
        const payload = await ctx.waitForSignal("approval");
        return { payload, run: ctx.attempt };
      },
      async () => {
        const late = await client.submit(name, {});
        const asleep = await waiting(late.id);
        expect(asleep.wait).toMatchObject({ kind: "signal", name: "signal:approval", signal: "approval" });
        expect(await client.signal(late.id, "approval", { approved: true })).toMatchObject({
          task_id: late.id,
          name: "approval",
          resumed: true,
        });
        const lateDone = await finished(client, late.id);
        expect(lateDone.output).toEqual({ payload: { approved: true }, run: 2 });
        const seen = await events(late.id);
        expect(seen.filter((e) => e.kind === "signal_received").map((e) => [e["name"], e.payload])).toEqual([
          ["approval", { approved: true }],
        ]);
        expect(seen.filter((e) => e.kind === "resumed").map((e) => e.reason)).toEqual(["signal"]);

        const early = await finished(client, (await client.submit(name, { early: ["yes"] })).id);
        expect(early.output).toEqual({ payload: ["yes"], run: 1 });
        expect(early.attempts.map((a) => a.status)).toEqual(["succeeded"]);

        // A finished task takes no signal; an unknown one is not found.
        const gone = await client.signal(early.id, "approval", 1).catch((e: unknown) => e);
        expect(gone).toBeInstanceOf(SwitchyardError);
        expect(gone).toMatchObject({ code: "task_finished", status: 409 });
        const unknown = await client.signal("01a24490-10d7-701b-90b7-bc5c47d4ea8c", "approval").catch((e: unknown) => e);
        expect(unknown).toMatchObject({ code: "task_not_found", status: 404 });
      },
    );
  });

  it("raises WaitTimeoutError when the signal does not come in time: caught, or failing the task", async () => {
    const name = agentName("wait-timeout");
    await withWorker(
      name,
      {},
      async (ctx, input: { catch: boolean }) => {
        try {
          return { payload: await ctx.waitForSignal("never", { timeout: 0.3 }), run: ctx.attempt };
        } catch (e) {
          if (!input.catch || !(e instanceof WaitTimeoutError)) throw e;
          return { timedOut: e.signal, code: e.code, permanent: e instanceof PermanentError, run: ctx.attempt };
        }
      },
      async () => {
        const [caught, uncaught] = await Promise.all([client.submit(name, { catch: true }), client.submit(name, { catch: false })]);
        const caughtDone = await finished(client, caught.id);
        expect(caughtDone.status).toBe("succeeded");
        expect(caughtDone.output).toEqual({ timedOut: "never", code: "wait_timeout", permanent: true, run: 2 });
        expect((await events(caught.id)).filter((e) => e.kind === "resumed").map((e) => e.reason)).toEqual(["timeout"]);
        const uncaughtDone = await finished(client, uncaught.id);
        expect(uncaughtDone.status).toBe("dead");
        expect(uncaughtDone.error).toMatchObject({ class: "permanent", code: "wait_timeout" });
      },
    );
  });
});

describe("child tasks", () => {
  it("spawns children and joins them: outputs in order, a ChildFailure for the one that failed", async () => {
    const parent = agentName("parent");
    const child = agentName("child");
    const runs: number[] = [];
    // The children finish only once the parent waits for them.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    await withWorker(
      child,
      {},
      async (_ctx, input: { n: number; fail?: boolean }) => {
        await released;
        if (input.fail) throw new PermanentError("child refuses", { code: "nope" });
        return { n: input.n };
      },
      () =>
        withWorker(
          parent,
          {},
          async (ctx) => {
            runs.push(ctx.attempt);
            const ids = [
              await ctx.spawn(child, { n: 1 }),
              await ctx.spawn(child, { n: 2, fail: true }, { priority: 5 }),
              await ctx.spawn(child, { n: 3 }, { key: "third" }),
            ];
            const results = await ctx.join(ids);
            let raised: unknown;
            await ctx.join(ids, { raiseOnFailure: true }).catch((e: unknown) => (raised = e));
            const failure = results[1] as ChildFailure;
            return {
              ids,
              first: results[0],
              third: results[2],
              failure: { isFailure: failure instanceof ChildFailure, taskId: failure.taskId, status: failure.status, code: failure.error?.code },
              raised: raised instanceof ChildTaskFailed ? { code: raised.code, taskId: raised.failure.taskId } : String(raised),
            };
          },
          async () => {
            const task = await client.submit(parent, {});
            const joining = await waiting(task.id);
            expect(joining.wait).toMatchObject({ kind: "children", name: "join:#1" });
            expect(joining.wait?.children?.length).toBe(3);
            release();
            const done = await finished(client, task.id);
            expect(done.status).toBe("succeeded");
            const out = done.output as { ids: string[] };
            expect(out).toEqual({
              ids: out.ids,
              first: { n: 1 },
              third: { n: 3 },
              failure: { isFailure: true, taskId: out.ids[1], status: "dead", code: "nope" },
              raised: { code: "child_failed", taskId: out.ids[1] },
            });
            // Run 1 spawned and waited; run 2 found the spawns and the join stored.
            expect(runs).toEqual([1, 2]);
            expect(joining.wait?.children).toEqual(out.ids);
            expect(await children(task.id)).toEqual([...out.ids].sort());
            const steps = await client.steps(task.id);
            expect(steps.map((s) => s.name).sort()).toEqual(["join:#1", "join:#2", "spawn:#1", "spawn:#2", "spawn:third"]);
            const second = await client.get(out.ids[1]);
            expect(second.parent_id).toBe(task.id);
            expect(second.priority).toBe(5);
          },
        ),
    );
  });

  it("spawns a child once per task: a retry gets the same child", async () => {
    const parent = agentName("respawn");
    const seen: string[] = [];
    await withWorker(
      parent,
      FAST_RETRY,
      async (ctx) => {
        const id = await ctx.spawn("echo", { hello: ctx.attempt });
        seen.push(id);
        if (ctx.attempt === 1) throw new RetryableError("failing after the spawn");
        return { id, run: ctx.attempt };
      },
      async () => {
        const task = await client.submit(parent, {});
        const done = await finished(client, task.id);
        expect(done.status).toBe("succeeded");
        expect(seen.length).toBe(2);
        expect(seen[1]).toBe(seen[0]);
        expect(done.output).toEqual({ id: seen[0], run: 2 });
        expect(await children(task.id)).toEqual([seen[0]]);
        expect((await finished(client, seen[0])).output).toEqual({ hello: 1 });
      },
    );
  });
});
