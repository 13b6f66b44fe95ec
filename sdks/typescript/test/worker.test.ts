import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, PermanentError, RateLimitedError, RetryableError, SwitchyardError, Worker, type AgentOptions, type Handler, type TaskEvent } from "../src/index.js";
import { agentName, serveAgent, startProxy, startServer, until, finished, type TestServer } from "./harness.js";

const quiet = { info() {}, warn() {} };
let server: TestServer;
let client: Client;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ url: server.url, apiKey: server.clientKey });
});
afterAll(async () => {
  await server?.stop();
});

/** Runs `body` with a worker serving one agent, then drains it. */
function withWorker<Input>(
  name: string,
  options: AgentOptions,
  handler: Handler<Input>,
  body: () => Promise<void>,
  url = server.url,
): Promise<void> {
  return serveAgent(server, name, options, handler, body, { url, slots: 4 });
}

describe("worker", () => {
  it("registers its agent in hello and runs a task with logs, progress and partial output", async () => {
    const name = agentName("summarize");
    await withWorker(
      name,
      { inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] }, description: "test", version: "7" },
      async (ctx, input: { text: string }) => {
        await ctx.log("info", "starting");
        await ctx.progress(0.5, "half");
        await ctx.partial({ token: "Hel" });
        return { summary: input.text.toUpperCase(), attempt: ctx.attempt };
      },
      async () => {
        const agent = await server.rest<{ kind: string; version: string; input_schema: { required: string[] } }>(
          "GET",
          `/api/v1/agents/${name}`,
        );
        expect(agent.body.kind).toBe("remote");
        expect(agent.body.version).toBe("7");
        expect(agent.body.input_schema.required).toEqual(["text"]);
        const task = await client.submit(name, { text: "hi" }, { wait: 30 });
        expect(task.status).toBe("succeeded");
        expect(task.output).toEqual({ summary: "HI", attempt: 1 });
        const events: TaskEvent[] = [];
        for await (const e of client.follow(task.id, { since: 0 })) events.push(e);
        expect(events.some((e) => e.kind === "log" && e.level === "info" && e.message === "starting")).toBe(true);
        expect(events.some((e) => e.kind === "progress" && e.progress === 0.5 && e.message === "half")).toBe(true);
        expect(events.some((e) => e.kind === "partial" && JSON.stringify(e.data) === '{"token":"Hel"}')).toBe(true);
        expect(events.at(-1)?.kind).toBe("result");
        // A schema violation is rejected at submit, naming the field.
        const err = await client.submit(name, { text: 5 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SwitchyardError);
        expect((err as SwitchyardError).code).toBe("validation_failed");
        expect((err as SwitchyardError).violations.map((v) => v.path)).toContain("/text");
      },
    );
  });

  it("retries a RetryableError and marks a PermanentError dead without retrying", async () => {
    const name = agentName("errors");
    await withWorker(
      name,
      {},
      (ctx, input: { mode: string }) => {
        if (input.mode === "permanent") throw new PermanentError("bad input", { code: "bad_input" });
        if (ctx.attempt === 1) throw new RetryableError("upstream busy", { code: "busy" });
        return { attempt: ctx.attempt };
      },
      async () => {
        const retried = await finished(client, (await client.submit(name, { mode: "retry" })).id);
        expect(retried.status).toBe("succeeded");
        expect(retried.output).toEqual({ attempt: 2 });
        expect(retried.attempts.length).toBe(2);
        expect(retried.attempts[0].error?.class).toBe("retryable");
        expect(retried.attempts[0].error?.code).toBe("busy");

        const dead = await finished(client, (await client.submit(name, { mode: "permanent" })).id);
        expect(dead.status).toBe("dead");
        expect(dead.attempts.length).toBe(1);
        expect(dead.error?.class).toBe("permanent");
        expect(dead.error?.message).toBe("bad input");
        expect(dead.error?.code).toBe("bad_input");
      },
    );
  });

  it("waits retryAfter seconds after a RateLimitedError", async () => {
    const name = agentName("limited");
    const startedAt: number[] = [];
    await withWorker(
      name,
      {},
      (ctx) => {
        startedAt.push(Date.now());
        if (ctx.attempt === 1) throw new RateLimitedError({ retryAfter: 2 });
        return { ok: true };
      },
      async () => {
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("succeeded");
        expect(task.attempts[0].error?.class).toBe("rate_limited");
        expect(startedAt.length).toBe(2);
        // The default backoff after one failure is at most 200 ms; retry_after asked for 2 s.
        expect(startedAt[1] - startedAt[0]).toBeGreaterThanOrEqual(1_900);
      },
    );
  });

  it("aborts ctx.signal with a TimeoutError when the attempt runs out of time", async () => {
    const name = agentName("slowpoke");
    const reasons: string[] = [];
    await withWorker(
      name,
      { timeoutMs: 1_000 },
      async (ctx) => {
        if (ctx.attempt > 1) return { attempt: ctx.attempt };
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
        reasons.push((ctx.signal.reason as DOMException).name);
        return { late: true };
      },
      async () => {
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("succeeded");
        expect(task.output).toEqual({ attempt: 2 });
        expect(task.attempts[0].error?.code).toBe("timeout");
        expect(reasons).toEqual(["TimeoutError"]);
      },
    );
  });

  it("passes a cancellation to the handler through ctx.signal", async () => {
    const name = agentName("cancellable");
    let calls = 0;
    let sawCancel!: Promise<string>;
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    await withWorker(
      name,
      {},
      async (ctx) => {
        if (calls++ > 0) return { run: calls };
        sawCancel = new Promise<string>((resolve) =>
          ctx.signal.addEventListener("abort", () => resolve((ctx.signal.reason as DOMException).name)),
        );
        started();
        await sawCancel;
        return { finished: "anyway" };
      },
      async () => {
        const task = await client.submit(name, {});
        await startedP;
        await client.cancel(task.id);
        expect(await sawCancel).toBe("AbortError");
        const done = await finished(client, task.id);
        expect(done.status).toBe("cancelled");
        // A cancelled task can be run again.
        const again = await client.retry(task.id);
        const rerun = await finished(client, again.id);
        expect(rerun.status).toBe("succeeded");
        expect(rerun.output).toEqual({ run: 2 });
      },
    );
  });

  it("gives a handler that reads ctx.signal only after the cancel an already aborted signal", async () => {
    const name = agentName("late-signal");
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    let seen!: (v: { aborted: boolean; reason: string }) => void;
    const seenP = new Promise<{ aborted: boolean; reason: string }>((r) => (seen = r));
    await withWorker(
      name,
      {},
      async (ctx) => {
        started();
        // Poll `cancelled` without touching `signal`, which the SDK makes on first use.
        while (!ctx.cancelled) await new Promise((r) => setTimeout(r, 20));
        seen({ aborted: ctx.signal.aborted, reason: (ctx.signal.reason as DOMException).name });
        return null;
      },
      async () => {
        const task = await client.submit(name, {});
        await startedP;
        await client.cancel(task.id);
        expect(await seenP).toEqual({ aborted: true, reason: "AbortError" });
        expect((await finished(client, task.id)).status).toBe("cancelled");
      },
    );
  });

  it("heartbeats keep the lease of a task that runs longer than the lease", async () => {
    const short = await startServer({ SWITCHYARD__QUEUE__LEASE_MS: "1500", SWITCHYARD__QUEUE__HEARTBEAT_MS: "300" });
    try {
      const name = agentName("long");
      const shortClient = new Client({ url: short.url, apiKey: short.clientKey });
      const worker = new Worker({ url: short.url, apiKey: short.workerKey, slots: 1, logger: quiet });
      worker.agent(name, async () => {
        await new Promise((r) => setTimeout(r, 5_000));
        return { done: true };
      });
      const running = worker.start();
      await worker.connected();
      const task = await shortClient.submit(name, {}, { wait: 30 });
      expect(task.status).toBe("succeeded");
      expect(task.attempts.length).toBe(1);
      worker.stop();
      await running;
    } finally {
      await short.stop();
    }
  });

  it("reconnects after the connection drops and keeps serving", async () => {
    const proxy = await startProxy(server.url);
    const name = agentName("reconnect");
    try {
      const worker = new Worker({ url: proxy.url, apiKey: server.workerKey, slots: 2, logger: quiet, maxBackoff: 1 });
      worker.agent(name, (ctx) => ({ worker: ctx.agent }));
      const running = worker.start();
      await worker.connected();
      const first = await client.submit(name, {}, { wait: 30 });
      expect(first.status).toBe("succeeded");
      const before = worker.workerId;
      expect(proxy.cutAll()).toBeGreaterThan(0);
      await until("a new connection", () => Promise.resolve(worker.workerId !== undefined && worker.workerId !== before));
      const second = await client.submit(name, {}, { wait: 30 });
      expect(second.status).toBe("succeeded");
      worker.stop();
      await running;
    } finally {
      proxy.close();
    }
  });

  it("fails with a clear error for a wrong key and for a rejected hello", async () => {
    const wrong = new Worker({ url: server.url, apiKey: "sy_wrongwrongwrong", logger: quiet });
    wrong.agent(agentName("x"), () => null);
    const e1 = await wrong.start().catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SwitchyardError);
    expect((e1 as SwitchyardError).code).toBe("unauthorized");
    expect((e1 as SwitchyardError).status).toBe(401);

    // A key without the worker scope.
    const noScope = new Worker({ url: server.url, apiKey: server.clientKey, logger: quiet });
    noScope.agent(agentName("x"), () => null);
    const e2 = await noScope.start().catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(SwitchyardError);
    expect((e2 as SwitchyardError).status).toBe(403);

    // Built-in agents cannot be served remotely: the server refuses the hello.
    const builtin = new Worker({ url: server.url, apiKey: server.workerKey, logger: quiet });
    builtin.agent("echo", () => null);
    const e3 = await builtin.start().catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(SwitchyardError);
    expect((e3 as SwitchyardError).message).toMatch(/echo/);

    // A retry policy the server cannot take is refused with the hello, naming the field;
    // an unknown field is refused at once, by name.
    const zero = new Worker({ url: server.url, apiKey: server.workerKey, logger: quiet });
    zero.agent(agentName("zero"), { retry: { maxAttempts: 0 } }, () => null);
    const e4 = await zero.start().catch((e: unknown) => e);
    expect(e4).toBeInstanceOf(SwitchyardError);
    expect((e4 as SwitchyardError).message).toMatch(/retry\.max_attempts/);
    const typo = { retry: { maxAtempts: 2 } } as unknown as AgentOptions;
    expect(() => zero.agent(agentName("typo"), typo, () => null)).toThrow(/maxAtempts/);
  });

  it("connects with a fresh ticket per connection instead of an API key", async () => {
    const minter = new Client({ url: server.url, apiKey: server.workerKey });
    let minted = 0;
    const name = agentName("ticketed");
    const worker = new Worker({
      url: server.url,
      ticket: async () => {
        minted += 1;
        return minter.wsTicket();
      },
      logger: quiet,
    });
    worker.agent(name, (_ctx, input) => input);
    const running = worker.start();
    running.catch(() => {});
    await worker.connected();
    try {
      const task = await finished(client, (await client.submit(name, { via: "ticket" })).id);
      expect(task.output).toEqual({ via: "ticket" });
      expect(minted).toBe(1);
    } finally {
      worker.stop();
      await running;
    }
    // A ticket is single use and checked like a key: a spent or made-up one is refused.
    const bad = new Worker({ url: server.url, ticket: () => "not-a-ticket", logger: quiet });
    bad.agent(agentName("x"), () => null);
    const e = await bad.start().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SwitchyardError);
    expect((e as SwitchyardError).status).toBe(401);
    expect(() => new Worker({ url: server.url })).toThrow(/apiKey/);
  });

  it("declares its retry policy in hello, replacing the agent's on every deployment", async () => {
    const name = agentName("policy");
    const agent = async () => (await server.rest<{ retry: Record<string, number> }>("GET", `/api/v1/agents/${name}`)).body;
    await withWorker(
      name,
      { retry: { maxAttempts: 2, baseMs: 50, capMs: 100 } },
      () => {
        throw new RetryableError("always");
      },
      async () => {
        expect((await agent()).retry).toEqual({ max_attempts: 2, base_ms: 50, cap_ms: 100 });
        const task = await finished(client, (await client.submit(name, {})).id);
        expect(task.status).toBe("dead");
        expect(task.attempts.length).toBe(2);
      },
    );
    // The next deployment declares another policy; what it leaves out takes the defaults.
    await withWorker(name, { retry: { maxAttempts: 3 } }, () => null, async () => {
      expect((await agent()).retry).toEqual({ max_attempts: 3, base_ms: 200, cap_ms: 30_000 });
    });
  });
});
