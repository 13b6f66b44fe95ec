// The benchmark (bench/bench.ts, compiled by `npm run build`) runs end to end on a tiny load,
// so it cannot rot between measurements. It checks the report's shape and that every task
// ran, never how fast.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, SDK_DIR } from "./harness.js";

const BENCH = join(SDK_DIR, "build/bench/bench.js");

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BENCH, ...args], {
      env: { ...process.env, SWITCHYARD_BIN: BIN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("benchmark", () => {
  it("starts its own server, runs every task on one worker process and reports each figure", async () => {
    if (!existsSync(BENCH)) throw new Error(`${BENCH} is missing: run \`npm run build\` first`);
    const { code, stdout, stderr } = await runBench([
      "--tasks", "300", "--batch", "50", "--runs", "2", "--latency-tasks", "10", "--slots", "16", "--json",
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ tasks: 300, batch: 50, slots: 16, latency_tasks: 10 });
    expect(report["throughput_runs"]).toHaveLength(2);
    for (const key of ["throughput_median", "idle_rss_mb", "idle_rss_after_load_mb", "latency_p50_ms", "latency_p99_ms"]) {
      expect(report[key], key).toBeGreaterThan(0);
    }
    expect(report["worker_cpu_us_per_task"]).toBeGreaterThanOrEqual(0);
    // 2 runs of 300, 50 unmeasured latency tasks and 10 measured ones (more if a slow machine
    // let a lease run out and a task ran twice).
    expect(report["worker_handled"]).toBeGreaterThanOrEqual(660);
  });

  it("refuses an existing server without a key", async () => {
    const { code, stderr } = await runBench(["--url", "http://127.0.0.1:9", "--json"]);
    expect(code).not.toBe(0);
    expect(stderr).toContain("--api-key");
  });
});
