// Starts the real Switchyard binary (`switchyard dev` on a free port in a temporary data
// directory), logs in as the admin and creates API keys. No part of Switchyard is mocked.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Socket as NetSocket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Worker, type AgentOptions, type Client, type Handler, type Task, type WorkerOptions } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
export const SDK_DIR = resolve(here, "..");
const REPO_ROOT = resolve(SDK_DIR, "../..");
/** The server binary the tests start: `$SWITCHYARD_BIN`, default the workspace's debug build. */
export const BIN = process.env["SWITCHYARD_BIN"] ?? join(REPO_ROOT, "target/debug/switchyard");
const PASSWORD = "sdk-test-password-1";

export interface TestServer {
  url: string;
  adminToken: string;
  workerKey: string;
  /** submit + read */
  clientKey: string;
  process: ChildProcess;
  /** An admin REST call; `T` is what the caller expects the JSON body to be. */
  rest<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export async function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "switchyard-ts-"));
  const child = spawn(BIN, ["dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      SWITCHYARD_ADMIN_PASSWORD: PASSWORD,
      SWITCHYARD__TELEMETRY__LOG_FORMAT: "json",
      SWITCHYARD__TELEMETRY__LOG_LEVEL: "warn,switchyard::cli=info",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const addr = await new Promise<string>((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error(`${BIN} did not report its address in 30 s`)), 30_000);
    child.once("exit", (code) => reject(new Error(`${BIN} exited early (${code})`)));
    child.once("error", reject);
    const lines = createInterface({ input: child.stdout });
    let found = false;
    lines.on("line", (line) => {
      if (found) return;
      try {
        const v = JSON.parse(line) as { message?: string; addr?: string };
        if (v.message === "switchyard is up" && v.addr) {
          found = true;
          clearTimeout(timer);
          resolveAddr(v.addr);
        }
      } catch {
        // banner lines
      }
    });
  });
  const url = `http://${addr}`;
  const raw = async <T>(method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; body: T }> => {
    const headers: Record<string, string> = {};
    if (token) headers["authorization"] = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(url + path, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const login = await raw<{ access_token: string }>("POST", "/api/v1/auth/login", undefined, { email: "admin@localhost", password: PASSWORD });
  if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  const adminToken = login.body.access_token;
  const key = async (name: string, scopes: string[]) => {
    const r = await raw<{ secret: string }>("POST", "/api/v1/api-keys", adminToken, { name, scopes });
    if (r.status !== 201 && r.status !== 200) throw new Error(`api key: ${JSON.stringify(r.body)}`);
    return r.body.secret;
  };
  return {
    url,
    adminToken,
    workerKey: await key("ts-worker", ["worker"]),
    clientKey: await key("ts-client", ["submit", "read"]),
    process: child,
    rest: <T>(method: string, path: string, body?: unknown) => raw<T>(method, path, adminToken, body),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A unique agent name per test, so tests on one server do not see each other's agents. */
export function agentName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 45_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The statuses a task stops at. */
export const FINAL_STATUSES = ["succeeded", "failed", "dead", "cancelled"];

/** Polls `client` until task `id` has finished, and returns it. */
export async function finished(client: Client, id: string, timeoutMs?: number): Promise<Task> {
  return until(`task ${id} to finish`, async () => {
    const t = await client.get(id);
    return FINAL_STATUSES.includes(t.status) ? t : undefined;
  }, timeoutMs);
}

/** A TCP proxy in front of the server whose connections can be cut: a real forced disconnect. */
export async function startProxy(target: string): Promise<{ url: string; cutAll(): number; close(): void }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<NetSocket>();
  const server = createServer((inbound) => {
    const outbound = connect(Number(port), hostname);
    sockets.add(inbound);
    sockets.add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on("error", drop).on("close", drop);
    outbound.on("error", drop).on("close", drop);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    cutAll() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      sockets.clear();
      return n;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Runs `body` while a worker serves agent `name` on `on` (quietly; `worker` adds options such as
 * `url` or `slots`), then drains the worker.
 */
export async function serveAgent<Input>(
  on: TestServer,
  name: string,
  options: AgentOptions,
  handler: Handler<Input>,
  body: () => Promise<void>,
  worker: Partial<WorkerOptions> = {},
): Promise<void> {
  const w = new Worker({ url: on.url, apiKey: on.workerKey, logger: { info() {}, warn() {} }, ...worker });
  w.agent(name, options, handler);
  const running = w.start();
  running.catch(() => {});
  await w.connected();
  try {
    await body();
  } finally {
    w.stop();
    await running;
  }
}
