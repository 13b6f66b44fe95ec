// A `switchyard dev` for the end-to-end tests: a fresh data directory and a free port
// (`placeServer`), then started with its output in test-output/ and waited for until
// /readyz answers (`startServer`). The binary is $SWITCHYARD_BIN or
// ../target/release/switchyard.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const WEB = resolve(import.meta.dirname, '..');

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** Where a server will run, before it starts (its configuration may need the URL). */
export interface ServerPlace {
  bin: string;
  port: number;
  url: string;
  dataDir: string;
}

export async function placeServer(dataDirPrefix: string): Promise<ServerPlace> {
  const bin = resolve(WEB, process.env.SWITCHYARD_BIN ?? '../target/release/switchyard');
  if (!existsSync(bin)) {
    throw new Error(`no switchyard binary at ${bin}: run \`cargo build --release -p switchyard\` (after \`npm run build\`), or set SWITCHYARD_BIN`);
  }
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), dataDirPrefix));
  return { bin, port, url: `http://127.0.0.1:${port}`, dataDir };
}

export interface RunningServer {
  url: string;
  /** The last lines of the server's output, for an error message. */
  logTail(): string;
  /** SIGTERM (SIGKILL after 10 s), then the data directory is removed. */
  stop(): Promise<void>;
}

async function waitReady(url: string, exited: () => string | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const why = exited();
    if (why) throw new Error(`switchyard exited before it was ready (${why})`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) return;
      last = `readyz answered ${r.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`switchyard was not ready within ${timeoutMs} ms: ${last}`);
}

/**
 * Runs `switchyard [globalArgs] dev` at `place` and waits until it is ready; if it is not,
 * stops it and throws with the tail of its log.
 */
export async function startServer(
  place: ServerPlace,
  opts: { logName: string; env: Record<string, string>; globalArgs?: string[] },
): Promise<RunningServer> {
  mkdirSync(join(WEB, 'test-output'), { recursive: true });
  const logPath = join(WEB, 'test-output', opts.logName);
  const log = createWriteStream(logPath);
  const args = [...(opts.globalArgs ?? []), 'dev', '--data-dir', place.dataDir, '--listen', `127.0.0.1:${place.port}`];
  const child = spawn(place.bin, args, {
    cwd: place.dataDir,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exitedWith: string | null = null;
  child.on('exit', (code, signal) => {
    exitedWith = `code ${code}, signal ${signal}`;
  });
  const server: RunningServer = {
    url: place.url,
    logTail: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n') : ''),
    async stop() {
      if (exitedWith === null) {
        child.kill('SIGTERM');
        await new Promise<void>((res) => {
          const force = setTimeout(() => {
            child.kill('SIGKILL');
            res();
          }, 10_000);
          child.once('exit', () => {
            clearTimeout(force);
            res();
          });
        });
      }
      log.end();
      rmSync(place.dataDir, { recursive: true, force: true });
    },
  };
  try {
    await waitReady(place.url, () => exitedWith, 60_000);
  } catch (e) {
    await server.stop();
    throw new Error(`${(e as Error).message}\n--- server log (tail) ---\n${server.logTail()}`);
  }
  return server;
}
