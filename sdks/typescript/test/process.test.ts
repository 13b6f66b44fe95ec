// The example worker (examples/worker.ts, compiled by `npm run build`) as real separate
// processes: SIGKILL one mid-task, SIGTERM another to drain it.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Client, type TaskEvent } from "../src/index.js";
import { SDK_DIR, agentName, startServer, until, finished, type TestServer } from "./harness.js";

const EXAMPLE = join(SDK_DIR, "build/examples/worker.js");
let server: TestServer;
let client: Client;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(EXAMPLE)) throw new Error(`${EXAMPLE} is missing: run \`npm run build\` first`);
  server = await startServer();
  client = new Client({ url: server.url, apiKey: server.clientKey });
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
afterAll(async () => {
  await server?.stop();
});

function startWorker(name: string, agent: string): ChildProcess {
  const child = spawn(process.execPath, [EXAMPLE, server.url], {
    env: { ...process.env, SWITCHYARD_API_KEY: server.workerKey, WORKER_NAME: name, WORKER_SLOTS: "4", AGENT_NAME: agent },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  return child;
}

async function remoteWorkers(): Promise<string[]> {
  const r = await server.rest<{ items: { kind: string; name: string }[] }>("GET", "/api/v1/workers");
  return r.body.items.filter((w) => w.kind === "remote").map((w) => w.name);
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

describe("worker processes", () => {
  it("a task whose worker is SIGKILLed mid-run completes on another worker exactly once", async () => {
    const agent = agentName("wc-kill");
    const a = startWorker("victim", agent);
    await until("the first worker", async () => (await remoteWorkers()).includes("victim"));
    const task = await client.submit(agent, { text: words(40), delay_ms: 100 });
    for await (const e of client.follow(task.id, { since: 0 })) if (e.kind === "log") break;
    expect((await client.get(task.id)).attempts.at(-1)?.worker).toBe("victim");
    startWorker("survivor", agent);
    await until("the second worker", async () => (await remoteWorkers()).includes("survivor"));
    const exited = new Promise((r) => a.once("exit", r));
    expect(a.exitCode).toBeNull();
    a.kill("SIGKILL");
    await exited;

    const done = await finished(client, task.id, 90_000);
    expect(done.status).toBe("succeeded");
    expect(done.output).toEqual({ words: 40, worker: "survivor" });
    expect(done.attempts.filter((at) => at.status === "succeeded").length).toBe(1);
    expect(done.attempts[0].worker).toBe("victim");
    expect(done.attempts[0].error?.code).toBe("worker_lost");
    const events: TaskEvent[] = [];
    for await (const e of client.follow(task.id, { since: 0 })) events.push(e);
    expect(events.filter((e) => e.kind === "result").length).toBe(1);
  });

  it("SIGTERM drains: the running task finishes, no new task is taken, the process exits 0", async () => {
    const agent = agentName("wc-drain");
    const w = startWorker("drainer", agent);
    await until("the worker", async () => (await remoteWorkers()).includes("drainer"));
    const running = await client.submit(agent, { text: words(30), delay_ms: 100 });
    // The handler logs before its first word: the worker has the task in hand.
    for await (const e of client.follow(running.id, { since: 0 })) if (e.kind === "log") break;
    const exit = new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the worker did not exit within 45 s of SIGTERM")), 45_000);
      w.once("exit", (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    w.kill("SIGTERM");
    // Give the drain message time to arrive, then offer a task while the worker still has
    // free slots and is still finishing the first one.
    await new Promise((r) => setTimeout(r, 500));
    const later = await client.submit(agent, { text: "not for the drainer" });
    expect(w.exitCode).toBeNull();

    expect(await exit).toBe(0);
    const first = await client.get(running.id);
    expect(first.status).toBe("succeeded");
    expect(first.output).toEqual({ words: 30, worker: "drainer" });
    expect(first.attempts.length).toBe(1);
    const waiting = await client.get(later.id);
    expect(waiting.status).toBe("queued");
    expect(waiting.attempts.length).toBe(0);

    startWorker("after", agent);
    const served = await finished(client, later.id, 90_000);
    expect(served.status).toBe("succeeded");
    expect(served.output).toMatchObject({ worker: "after" });
  });
});
