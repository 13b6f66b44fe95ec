// Flow control against the real server: concurrency keys on submissions, cron schedules (CRUD,
// pause/resume, run-now, a per-second schedule firing), their errors, and a worker's
// RateLimitedError pausing a rate-limited agent's starts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, RateLimitedError, SwitchyardError } from "../src/index.js";
import { agentName, finished, serveAgent, startServer, until, type TestServer } from "./harness.js";

let server: TestServer;
let client: Client;
let admin: Client;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ url: server.url, apiKey: server.clientKey });
  admin = new Client({ url: server.url, token: server.adminToken });
});
afterAll(async () => {
  await server?.stop();
});

/** What `promise` rejects with (it must reject). */
async function rejection(promise: Promise<unknown>): Promise<SwitchyardError> {
  const e = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SwitchyardError);
  return e as SwitchyardError;
}

const ms = (ts: string | null | undefined): number => Date.parse(ts ?? "");

describe("flow control", () => {
  it("round-trips a concurrency key on submit and submitBatch", async () => {
    const task = await client.submit("echo", { n: 1 }, { concurrencyKey: "customer-7", wait: 10 });
    expect(task.status).toBe("succeeded");
    expect(task.concurrency_key).toBe("customer-7");
    expect((await client.get(task.id)).concurrency_key).toBe("customer-7");
    const batch = await client.submitBatch("echo", [{ n: 2 }, { n: 3 }], { concurrencyKey: "cust-8" });
    expect(batch.map((t) => t.concurrency_key)).toEqual(["cust-8", "cust-8"]);
    const plain = await client.submit("echo", { n: 4 }, { wait: 10 });
    expect(plain.concurrency_key ?? null).toBeNull();
    expect(plain.schedule ?? null).toBeNull();
    expect(plain.scheduled_for ?? null).toBeNull();
    const empty = await rejection(client.submit("echo", {}, { concurrencyKey: "" }));
    expect(empty).toMatchObject({ status: 400, code: "invalid_parameter" });
    const long = await rejection(client.submit("echo", {}, { concurrencyKey: "k".repeat(257) }));
    expect(long.code).toBe("invalid_parameter");
  });

  it("creates, lists, replaces, pauses, triggers, resumes and deletes a schedule", async () => {
    const name = agentName("nightly");
    const created = await admin.createSchedule(name, "echo", "0 2 * * *", {
      input: { report: "daily" },
      timezone: "Europe/Berlin",
    });
    try {
      expect(created).toMatchObject({
        name,
        agent: "echo",
        cron: "0 2 * * *",
        input: { report: "daily" },
        timezone: "Europe/Berlin",
        overlap: "allow",
        catchup: "none",
        paused: false,
        last_runs: [],
      });
      expect(created.next_runs).toHaveLength(5);
      expect(created.owner).toBeTruthy();
      expect(await admin.getSchedule(name)).toEqual(created);
      expect((await admin.listSchedules()).map((s) => s.name)).toContain(name);

      const updated = await admin.updateSchedule(name, "echo", "30 3 * * 1", {
        input: { report: "weekly" },
        overlap: "skip",
        catchup: "latest",
      });
      expect(updated).toMatchObject({ cron: "30 3 * * 1", input: { report: "weekly" }, overlap: "skip", catchup: "latest" });
      expect(updated.timezone).toBe("UTC"); // a replacement: left out, the default

      const paused = await admin.pauseSchedule(name);
      expect(paused).toMatchObject({ paused: true, next_runs: [], cron: "30 3 * * 1", input: { report: "weekly" }, overlap: "skip", catchup: "latest" });
      expect((await admin.pauseSchedule(name)).paused).toBe(true); // already paused: as it is

      const fired = await admin.triggerSchedule(name); // runs while paused too
      expect(fired.schedule).toBe(name);
      expect(fired.task_id).toBeTruthy();
      const task = await finished(admin, fired.task_id);
      expect(task).toMatchObject({ status: "succeeded", output: { report: "weekly" }, schedule: name, scheduled_for: fired.scheduled_for });

      const resumed = await admin.resumeSchedule(name);
      expect(resumed.paused).toBe(false);
      expect(resumed.next_runs).toHaveLength(5);
      expect(resumed.last_runs.map((r) => r.task_id)).toEqual([fired.task_id]);
      expect(resumed.last_runs[0]).toMatchObject({ scheduled_for: fired.scheduled_for, status: "succeeded" });

      const preview = await admin.previewSchedule("0 12 * * *", "America/New_York");
      expect(preview).toHaveLength(5);
      for (const t of preview) expect([16, 17]).toContain(new Date(t).getUTCHours());
      expect(await admin.previewSchedule("*/10 * * * * *")).toHaveLength(5);
    } finally {
      await admin.deleteSchedule(name);
    }
    const gone = await rejection(admin.getSchedule(name));
    expect(gone).toMatchObject({ status: 404, code: "schedule_not_found" });
    expect((await admin.listSchedules()).map((s) => s.name)).not.toContain(name);
  });

  it("fires a per-second schedule: tasks with schedule and scheduled_for", async () => {
    const name = agentName("ticker");
    await admin.createSchedule(name, "echo", "*/1 * * * * *", { input: { tick: true } });
    let runs;
    try {
      runs = await until(
        "two fired tasks",
        async () => {
          const s = await admin.getSchedule(name);
          return s.last_runs.length >= 2 ? s.last_runs : undefined;
        },
        3_500,
      );
    } finally {
      await admin.deleteSchedule(name);
    }
    const ticks = runs.map((r) => ms(r.scheduled_for));
    expect([...ticks].sort((a, b) => b - a)).toEqual(ticks); // newest first
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const t of ticks) expect(t % 1000).toBe(0); // on whole seconds
    for (const run of runs.slice(0, 2)) {
      const task = await finished(admin, run.task_id);
      expect(task).toMatchObject({ status: "succeeded", schedule: name, scheduled_for: run.scheduled_for, input: { tick: true } });
    }
  });

  it("surfaces schedule errors as SwitchyardError with the server's code", async () => {
    const name = agentName("errors");
    const cases: [string, string, string, Parameters<Client["createSchedule"]>[3], number, string][] = [
      [name, "echo", "every day", {}, 422, "invalid_schedule"],
      [name, "echo", "0 2 * * *", { timezone: "Mars/Olympus" }, 422, "invalid_schedule"],
      ["Not A Name!", "echo", "0 2 * * *", {}, 422, "invalid_schedule"],
      [name, agentName("no-such-agent"), "0 2 * * *", {}, 422, "unknown_agent"],
    ];
    for (const [schedule, agent, cron, options, status, code] of cases) {
      const e = await rejection(admin.createSchedule(schedule, agent, cron, options));
      expect({ status: e.status, code: e.code }, cron).toEqual({ status, code });
      expect(e.message).toBeTruthy();
    }
    const badCron = await rejection(admin.createSchedule(name, "echo", "61 * * * *"));
    expect(badCron.code).toBe("invalid_schedule");
    expect(badCron.message).toMatch(/61/);

    await admin.createSchedule(name, "echo", "0 2 * * *", { paused: true });
    try {
      expect(await rejection(admin.createSchedule(name, "echo", "0 3 * * *"))).toMatchObject({ status: 409, code: "schedule_exists" });
      expect((await rejection(admin.updateSchedule(name, "echo", "0 2 * * *", { timezone: "Nowhere" }))).code).toBe("invalid_schedule");
      expect((await client.getSchedule(name)).paused).toBe(true); // reading needs no admin
      expect(await rejection(client.resumeSchedule(name))).toMatchObject({ status: 403, code: "forbidden" });
      expect((await rejection(client.triggerSchedule(name))).status).toBe(403);
    } finally {
      await admin.deleteSchedule(name);
    }

    const missing = agentName("missing");
    for (const call of [
      () => admin.getSchedule(missing),
      () => admin.updateSchedule(missing, "echo", "0 2 * * *"),
      () => admin.pauseSchedule(missing),
      () => admin.resumeSchedule(missing),
      () => admin.triggerSchedule(missing),
      () => admin.deleteSchedule(missing),
    ]) {
      expect(await rejection(call())).toMatchObject({ status: 404, code: "schedule_not_found" });
    }
    expect(await rejection(admin.previewSchedule("* * *"))).toMatchObject({ status: 422, code: "invalid_schedule" });
  });

  it("pauses a rate-limited agent's starts after a RateLimitedError with retryAfter", async () => {
    const name = agentName("limited");
    const registered = await server.rest("POST", "/api/v1/agents", {
      name,
      kind: "remote",
      rate_limit: { limit: 100, period_s: 1 },
    });
    expect(registered.status).toBe(201);
    let pause = 0;
    await serveAgent(
      server,
      name,
      {},
      (ctx, input: { first: boolean }) => {
        if (input.first && ctx.attempt === 1) throw new RateLimitedError("upstream says 429", { retryAfter: 1.5 });
        return { attempt: ctx.attempt };
      },
      async () => {
        const first = await client.submit(name, { first: true });
        const failed = await until("the first attempt to fail", async () => {
          const t = await client.get(first.id);
          return t.attempts[0]?.finished_at ? t : undefined;
        });
        const failedAt = ms(failed.attempts[0].finished_at);
        const second = await client.submit(name, { first: false });
        const secondDone = await finished(client, second.id);
        const firstDone = await finished(client, first.id);
        expect(secondDone.status).toBe("succeeded");
        expect(firstDone.status).toBe("succeeded");
        expect(failed.attempts[0].error?.class).toBe("rate_limited");
        expect(ms(firstDone.attempts[1].started_at) - failedAt).toBeGreaterThanOrEqual(1_500);
        // Without the pause the second task would start within milliseconds.
        pause = ms(secondDone.attempts[0].started_at) - failedAt;
        // The pause is retryAfter from the failure (a few ms of clock between the attempt's end
        // and the completer that sets it); giving back unused starts never shortens it.
        expect(pause).toBeGreaterThanOrEqual(1_450);
      },
    );
  });
});
