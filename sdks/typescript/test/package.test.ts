// The published shape: the version follows the protocol crate, the exports map resolves, and
// the built Client has no static import of Node-only modules (so it bundles for browsers).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { VERSION } from "../src/index.js";
import { SDK_DIR } from "./harness.js";

describe("package", () => {
  it("follows the server's protocol version", () => {
    const pkg = JSON.parse(readFileSync(join(SDK_DIR, "package.json"), "utf8")) as { version: string };
    expect(pkg.version).toBe(VERSION);
    const workspace = readFileSync(join(SDK_DIR, "../../Cargo.toml"), "utf8");
    const declared = /\[workspace\.package\][^[]*?\nversion\s*=\s*"([^"]+)"/.exec(workspace)?.[1];
    expect(declared).toBe(VERSION);
  });

  it("resolves through its exports map to the built ESM with declarations", async () => {
    const mod = (await import("@switchyard/sdk")) as Record<string, unknown>;
    for (const name of ["Client", "Worker", "SwitchyardError", "RetryableError", "PermanentError", "RateLimitedError", "WaitTimeoutError", "ChildFailure", "ChildTaskFailed"]) {
      expect(typeof mod[name]).toBe("function");
    }
    const files = readdirSync(join(SDK_DIR, "dist"));
    expect(files).toContain("index.d.ts");
  });

  it("imports nothing Node-only at the top level of the built modules", () => {
    const dist = join(SDK_DIR, "dist");
    let seen = 0;
    for (const file of readdirSync(dist).filter((f) => f.endsWith(".js"))) {
      const source = readFileSync(join(dist, file), "utf8");
      const staticImports = [...source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1]);
      seen += staticImports.length;
      for (const spec of staticImports) expect(spec, `${file} imports ${spec}`).toMatch(/^\.\//);
      expect(source, file).not.toMatch(/\brequire\(/);
    }
    expect(seen).toBeGreaterThan(5);
  });
});
