// The TypeScript SDK's benchmark: one Node worker process serving an echo agent, measured for
// (a) throughput — tasks submitted in batches (`POST /api/v1/tasks/batch`), from the first
//     submit to the last task finished (then checked: none failed, died or was cancelled);
// (b) the worker process's idle memory (RSS, read from /proc before and after the load);
// (c) latency of one task at a time, submitted with `?wait` (p50/p99).
//
//   npm run build
//   SWITCHYARD_BIN=/path/to/switchyard node build/bench/bench.js            # starts its own server
//   node build/bench/bench.js --url http://127.0.0.1:8080 --api-key sy_…   # an existing one
//   … --cpu-prof /tmp/prof                                                  # profile the worker
//
// With --url the key needs the worker, submit and read scopes. Without it the bench starts
// `$SWITCHYARD_BIN dev` on a free port with a fresh data directory and removes it afterwards.
// The worker is a separate process (this script with `--role worker`), so the submitter's
// CPU is not counted in its figures; on a 2-core machine they still share the cores.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client, Worker } from "@switchyard/sdk";

const { values: args } = parseArgs({
  options: {
    role: { type: "string", default: "bench" },
    url: { type: "string" },
    "api-key": { type: "string" },
    agent: { type: "string" },
    tasks: { type: "string", default: "100000" },
    batch: { type: "string", default: "500" },
    concurrency: { type: "string", default: "4" },
    slots: { type: "string", default: "2048" },
    runs: { type: "string", default: "3" },
    "latency-tasks": { type: "string", default: "2000" },
    json: { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
  },
});

function positive(name: keyof typeof args): number {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer`);
  return n;
}


/** The worker process: serves the echo agent until SIGTERM, then prints how many it ran. */
async function runWorker(): Promise<void> {
  if (!args.url || !args["api-key"] || !args.agent) throw new TypeError("--role worker needs --url, --api-key and --agent");
  let handled = 0;
  const worker = new Worker({
    url: args.url,
    apiKey: args["api-key"],
    slots: positive("slots"),
    name: "ts-bench-worker",
    logger: { info() {}, warn: (m: string) => console.error(m) },
  });
  worker.agent(args.agent, { description: "TypeScript SDK benchmark: echoes its input" }, (_ctx, input) => {
    handled += 1;
    return input;
  });
  const running = worker.run();
  await worker.connected();
  console.log(JSON.stringify({ ready: true }));
  await running;
  console.log(JSON.stringify({ handled }));
}

interface Target {
  url: string;
  key: string;
  stop(): Promise<void>;
}

async function runBench(): Promise<void> {
  const tasks = positive("tasks");
  const batch = positive("batch");
  const concurrency = positive("concurrency");
  const runs = positive("runs");
  const latencyTasks = positive("latency-tasks");
  const target = args.url ? existingServer(args.url, args["api-key"]) : await startServer();
  const agent = args.agent ?? `ts-bench-echo-${Date.now().toString(36)}`;
  const client = new Client({ url: target.url, apiKey: target.key });
  const worker = await startWorker(target, agent);
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    server: args.url ? target.url : (process.env["SWITCHYARD_BIN"] ?? "switchyard"),
    tasks,
    batch,
    concurrency,
    slots: positive("slots"),
  };
  try {
    await settle();
    report["idle_rss_mb"] = rssMb(worker.process);

    const cpuBefore = cpuSeconds(worker.process);
    const throughputs: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const perSecond = await throughput(client, target, agent, tasks, batch, concurrency);
      throughputs.push(perSecond);
      log(`run ${run}/${runs}: ${Math.round(perSecond)} tasks/s`);
    }
    report["throughput_runs"] = throughputs.map(Math.round);
    report["throughput_median"] = Math.round(median(throughputs));
    // The worker's own CPU per task (user + system, all runs): less noisy than throughput on a
    // shared machine, and what the SDK's hot path controls.
    report["worker_cpu_us_per_task"] = Math.round(((cpuSeconds(worker.process) - cpuBefore) / (tasks * runs)) * 1e6);

    await settle();
    report["idle_rss_after_load_mb"] = rssMb(worker.process);

    const latencies = await latency(client, agent, latencyTasks);
    report["latency_tasks"] = latencyTasks;
    report["latency_p50_ms"] = round3(percentile(latencies, 0.5));
    report["latency_p99_ms"] = round3(percentile(latencies, 0.99));

    const handled = await worker.stop();
    const expected = tasks * runs + latencyTasks + LATENCY_WARMUP;
    if (handled < expected) throw new Error(`the worker ran ${handled} tasks, fewer than the ${expected} submitted`);
    report["worker_handled"] = handled;
  } finally {
    await worker.stop().catch(() => 0);
    await target.stop();
  }
  if (args.json) console.log(JSON.stringify(report));
  else printReport(report);
}

function existingServer(url: string, key: string | undefined): Target {
  if (!key) throw new TypeError("--url needs --api-key (a key with the worker, submit and read scopes)");
  return { url, key, stop: () => Promise.resolve() };
}

/** `$SWITCHYARD_BIN dev` on a free port with a fresh data directory; an admin-made key. */
async function startServer(): Promise<Target> {
  const bin = process.env["SWITCHYARD_BIN"];
  if (!bin) throw new TypeError("set SWITCHYARD_BIN to the server binary (or pass --url and --api-key)");
  const password = "ts-bench-password-1";
  const dataDir = mkdtempSync(join(tmpdir(), "switchyard-ts-bench-"));
  const child = spawn(bin, ["dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      SWITCHYARD_ADMIN_PASSWORD: password,
      SWITCHYARD__TELEMETRY__LOG_FORMAT: "json",
      SWITCHYARD__TELEMETRY__LOG_LEVEL: "warn,switchyard::cli=info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const addr = await jsonLine<{ message?: string; addr?: string }>(
      child,
      (line) => line.message === "switchyard is up" && typeof line.addr === "string",
      `${bin} did not report its address`,
    );
    const url = `http://${addr.addr}`;
    const login = await post<{ access_token: string }>(url, "/api/v1/auth/login", undefined, {
      email: "admin@localhost",
      password,
    });
    const key = await post<{ secret: string }>(url, "/api/v1/api-keys", login.access_token, {
      name: "ts-bench",
      scopes: ["worker", "submit", "read"],
    });
    return { url, key: key.secret, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function post<T>(url: string, path: string, token: string | undefined, body: unknown): Promise<T> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(url + path, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** The first JSON line of the child's stdout that `matches` (within 60 s). */
function jsonLine<T>(child: ChildProcess, matches: (line: T) => boolean, what: string): Promise<T> {
  const stdout = child.stdout;
  if (!stdout) return Promise.reject(new Error("the child has no stdout"));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within 60 s`)), 60_000);
    const onExit = (code: number | null) => reject(new Error(`${what}: it exited (${code})`));
    child.once("exit", onExit);
    const lines = createInterface({ input: stdout });
    lines.on("line", (text) => {
      let line: T;
      try {
        line = JSON.parse(text) as T;
      } catch {
        return; // banner lines
      }
      if (matches(line)) {
        clearTimeout(timer);
        child.off("exit", onExit);
        lines.close();
        resolve(line);
      }
    });
  });
}

interface WorkerProcess {
  process: ChildProcess;
  /** Drains the worker (SIGTERM) and answers how many tasks it ran. */
  stop(): Promise<number>;
}

async function startWorker(target: Target, agent: string): Promise<WorkerProcess> {
  const script = fileURLToPath(import.meta.url);
  // `--cpu-prof DIR` profiles the worker process (a .cpuprofile in DIR when it exits).
  const profile = args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${args["cpu-prof"]}`] : [];
  const child = spawn(
    process.execPath,
    [...profile, script, "--role", "worker", "--url", target.url, "--api-key", target.key, "--agent", agent, "--slots", String(positive("slots"))],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await jsonLine<{ ready?: boolean }>(child, (line) => line.ready === true, "the worker did not connect");
  let stopped: Promise<number> | undefined;
  return {
    process: child,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return 0;
        const handled = jsonLine<{ handled?: number }>(child, (line) => typeof line.handled === "number", "the worker did not drain");
        child.kill("SIGTERM");
        return (await handled).handled ?? 0;
      })();
      return stopped;
    },
  };
}

/** Tasks per second: from the first batch submitted to the agent's queue being empty. */
async function throughput(client: Client, target: Target, agent: string, tasks: number, batch: number, concurrency: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const submitter = async () => {
    for (;;) {
      const from = next;
      if (from >= tasks) return;
      next = Math.min(from + batch, tasks);
      const inputs = Array.from({ length: next - from }, (_, i) => ({ i: from + i }));
      await client.submitBatch(agent, inputs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, submitter));
  const finishedAt = await queueEmpty(target, agent, started + 600_000);
  await noneUnsuccessful(target, agent);
  return tasks / ((finishedAt - started) / 1000);
}

interface QueueStats {
  agent: string;
  ready: number;
  scheduled: number;
  running: number;
}

/**
 * When the agent had nothing ready, scheduled or running, polled every 10 ms: the time the
 * last task finished, to within the polling interval.
 */
async function queueEmpty(target: Target, agent: string, deadline: number): Promise<number> {
  const url = `${target.url}/api/v1/queues`;
  const headers = { authorization: `Bearer ${target.key}` };
  for (;;) {
    const res = await fetch(url, { headers });
    if (!res.ok) throw new Error(`GET /api/v1/queues: HTTP ${res.status}`);
    const body = (await res.json()) as { items: QueueStats[] };
    const now = performance.now();
    const q = body.items.find((s) => s.agent === agent);
    if (!q || q.ready + q.scheduled + q.running === 0) return now;
    if (now > deadline) throw new Error(`the queue of ${agent} did not empty in time: ${JSON.stringify(q)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** After the queue emptied (outside the timed window): every task of the agent succeeded. */
async function noneUnsuccessful(target: Target, agent: string): Promise<void> {
  const query = `agent=${encodeURIComponent(agent)}&status=failed,dead,cancelled,retrying&limit=1`;
  const res = await fetch(`${target.url}/api/v1/tasks?${query}`, { headers: { authorization: `Bearer ${target.key}` } });
  if (!res.ok) throw new Error(`GET /api/v1/tasks: HTTP ${res.status}`);
  const page = (await res.json()) as { items: { id: string; status: string }[] };
  const bad = page.items[0];
  if (bad) throw new Error(`task ${bad.id} of ${agent} ended ${bad.status}, not succeeded`);
}

const LATENCY_WARMUP = 50;

/** Milliseconds from submit to the answer of `?wait` with the finished task, one at a time. */
async function latency(client: Client, agent: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < LATENCY_WARMUP + n; i++) {
    const sent = performance.now();
    const task = await client.submit(agent, { i }, { wait: 30 });
    const took = performance.now() - sent;
    if (task.status !== "succeeded") throw new Error(`latency task ${task.id} ended ${task.status}`);
    if (i >= LATENCY_WARMUP) out.push(took);
  }
  return out;
}

/** Lets the worker's start-up or the last run's garbage settle before reading its memory. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 3000));
}

function rssMb(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kb) throw new Error("no VmRSS in /proc/<pid>/status (the memory figure needs Linux)");
  return Math.round((Number(kb[1]) / 1024) * 10) / 10;
}

/** User + system CPU seconds of a process so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(child: ChildProcess): number {
  const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
  // Fields after the command name (which is in parentheses and may hold spaces).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks / 100;
}

function median(xs: number[]): number {
  return percentile(xs, 0.5);
}

/** Nearest-rank percentile. */
function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function log(message: string): void {
  if (!args.json) console.error(message);
}

function printReport(r: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(24)} ${Array.isArray(v) ? v.join(" / ") : String(v)}`);
}

// Last, so that every declaration above is initialised.
if (args.role === "worker") await runWorker();
else if (args.role === "bench") await runBench();
else throw new RangeError(`--role is "bench" or "worker", not ${JSON.stringify(args.role)}`);
