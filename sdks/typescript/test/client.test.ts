import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, SwitchyardError, Worker, type TaskEvent } from "../src/index.js";
import { agentName, startProxy, startServer, until, finished, type TestServer } from "./harness.js";

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

describe("client", () => {
  it("submits and waits, gets, and submits a batch", async () => {
    const task = await client.submit("echo", { x: 1 }, { wait: 10 });
    expect(task.status).toBe("succeeded");
    expect(task.agent).toBe("echo");
    expect(task.input).toEqual({ x: 1 });
    expect(task.output).toEqual({ x: 1 });
    expect(task.attempts.length).toBe(1);
    const again = await client.get(task.id);
    expect(again.id).toBe(task.id);
    expect(again.output).toEqual({ x: 1 });

    const queued = await client.submit("echo", { x: 2 }, { priority: 3, idempotencyKey: agentName("idem") });
    expect(queued.id).toBeTruthy();
    expect((await finished(client, queued.id)).output).toEqual({ x: 2 });

    const tasks = await client.submitBatch("echo", [{ x: 1 }, { x: 2 }, { x: 3 }]);
    expect(tasks.map((t) => t.input)).toEqual([{ x: 1 }, { x: 2 }, { x: 3 }]);
    const outputs = await Promise.all(tasks.map(async (t) => (await finished(client, t.id)).output));
    expect(outputs).toEqual([{ x: 1 }, { x: 2 }, { x: 3 }]);
  });

  it("answers a wait that ends before the task with the running task", async () => {
    const task = await client.submit("sleep", { ms: 3_000 }, { wait: 0.3 });
    expect(["queued", "running"]).toContain(task.status);
    expect((await finished(client, task.id)).status).toBe("succeeded");
  });

  it("cancels a running task and retries it", async () => {
    const task = await client.submit("sleep", { ms: 60_000 });
    await until("the task to run", async () => (await client.get(task.id)).status === "running");
    await client.cancel(task.id);
    const cancelled = await finished(client, task.id);
    expect(cancelled.status).toBe("cancelled");
    const retried = await client.retry(task.id);
    expect(["queued", "running"]).toContain(retried.status);
    await client.cancel(retried.id);
    expect((await finished(client, retried.id)).status).toBe("cancelled");
  });

  it("surfaces server errors as SwitchyardError: wrong key, unknown agent, schema violations, unknown task", async () => {
    const wrong = new Client({ url: server.url, apiKey: "sy_not_a_real_key" });
    const e1 = await wrong.submit("echo", {}).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SwitchyardError);
    expect(e1).toMatchObject({ code: "unauthorized", status: 401 });
    expect((e1 as SwitchyardError).message).toMatch(/API key/);

    const e2 = await client.submit("no-such-agent", {}).catch((e: unknown) => e);
    expect(e2).toMatchObject({ code: "unknown_agent", status: 422 });
    expect((e2 as SwitchyardError).message).toMatch(/no-such-agent/);

    const e3 = await client.submit("sleep", { ms: "x" }).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(SwitchyardError);
    expect(e3).toMatchObject({ code: "validation_failed", status: 422 });
    expect((e3 as SwitchyardError).violations).toEqual([expect.objectContaining({ path: "/ms", keyword: "type" })]);
    expect((e3 as SwitchyardError).message).toMatch(/\/ms/);

    const e4 = await client.get("01a24490-10d7-701b-90b7-bc5c47d4ea8c").catch((e: unknown) => e);
    expect(e4).toMatchObject({ code: "task_not_found", status: 404 });

    const e5 = (async () => {
      const events = [];
      for await (const event of wrong.follow("01a24490-10d7-701b-90b7-bc5c47d4ea8c")) events.push(event);
      return events;
    })();
    await expect(e5).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("follows with single-use WebSocket tickets instead of a token", async () => {
    const task = await client.submit("echo", { t: 1 }, { wait: 10 });
    let tickets = 0;
    const browserLike = new Client({
      url: server.url,
      ticket: async () => {
        tickets++;
        return client.wsTicket();
      },
    });
    const events: TaskEvent[] = [];
    for await (const e of browserLike.follow(task.id, { since: 0 })) events.push(e);
    expect(tickets).toBe(1);
    expect(events.at(-1)).toMatchObject({ kind: "result", output: { t: 1 } });
    await expect(browserLike.get(task.id)).rejects.toThrow(/ticket/);
  });

  it("follows a task over a token and a proxy that drops the connection: no event lost or repeated", async () => {
    const name = agentName("chatty");
    const worker = new Worker({ url: server.url, apiKey: server.workerKey, slots: 2, logger: quiet });
    worker.agent(name, async (ctx, input: { n: number }) => {
      for (let i = 0; i < input.n; i++) {
        await ctx.log("info", `line ${i}`);
        await new Promise((r) => setTimeout(r, 40));
      }
      return { lines: input.n };
    });
    const running = worker.start();
    await worker.connected();
    const proxy = await startProxy(server.url);
    try {
      // An access token works as well as an API key.
      const follower = new Client({ url: proxy.url, token: server.adminToken });
      const task = await client.submit(name, { n: 60 });
      const events: TaskEvent[] = [];
      let cuts = 0;
      for await (const e of follower.follow(task.id, { since: 0, maxBackoff: 0.5 })) {
        events.push(e);
        // Cut the connection twice in the middle of the stream.
        if (e.kind === "log" && (e.message === "line 10" || e.message === "line 35")) {
          cuts += proxy.cutAll() > 0 ? 1 : 0;
        }
      }
      expect(cuts).toBe(2);
      const seqs = events.map((e) => e.seq);
      expect(seqs[0]).toBe(1);
      // In order, none repeated (live events take numbers from blocks: gaps are allowed);
      // none lost: every line below.
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
      const lines = events.filter((e) => e.kind === "log").map((e) => e.message);
      expect(lines).toEqual(Array.from({ length: 60 }, (_, i) => `line ${i}`));
      expect(events.at(-1)).toMatchObject({ kind: "result", status: "succeeded", output: { lines: 60 } });
    } finally {
      proxy.close();
      worker.stop();
      await running;
    }
  });
});
