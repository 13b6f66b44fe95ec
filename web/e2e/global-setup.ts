// Starts `switchyard dev` on a fresh data directory and a free port, waits until it is ready,
// and stops it after the run. The binary is $SWITCHYARD_BIN or ../target/release/switchyard.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

const WEB = resolve(import.meta.dirname, '..');

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

export default async function globalSetup() {
  const bin = resolve(WEB, process.env.SWITCHYARD_BIN ?? '../target/release/switchyard');
  if (!existsSync(bin)) {
    throw new Error(`no switchyard binary at ${bin}: run \`cargo build --release -p switchyard\` (after \`npm run build\`), or set SWITCHYARD_BIN`);
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const password = `e2e-${randomBytes(12).toString('hex')}`;
  mkdirSync(join(WEB, 'test-output'), { recursive: true });
  // One user per role, created before the server takes the data directory's lock.
  const users = [
    { email: 'admin@localhost', role: 'admin', password },
    { email: 'operator@example.com', role: 'operator', password: `op-${password}` },
    { email: 'viewer@example.com', role: 'viewer', password: `view-${password}` },
  ];
  for (const u of users) {
    const r = spawnSync(bin, ['user', 'add', '--email', u.email, '--role', u.role], {
      cwd: dataDir,
      env: { ...process.env, SWITCHYARD__DATA_DIR: dataDir, RUST_BACKTRACE: '0' },
      input: `${u.password}\n`,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`could not create ${u.email}: ${r.stderr || r.error}`);
  }
  const logPath = join(WEB, 'test-output', 'server.log');
  const log = createWriteStream(logPath);
  const child = spawn(bin, ['dev', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    cwd: dataDir,
    // Metrics roll up every second (default ten), so the overview's series show finished
    // tasks on its next poll instead of up to one rollup interval later. Uploads are limited
    // to 1 MiB, so files.spec.ts can see a file refused for its size.
    env: {
      ...process.env,
      SWITCHYARD_ADMIN_PASSWORD: password,
      SWITCHYARD__MONITORING__ROLLUP_INTERVAL_MS: '1000',
      SWITCHYARD__FILES__MAX_BYTES: String(1024 * 1024),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exitedWith: string | null = null;
  child.on('exit', (code, signal) => {
    exitedWith = `code ${code}, signal ${signal}`;
  });

  const stop = async () => {
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
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await waitReady(url, () => exitedWith, 60_000);
    const index = await (await fetch(`${url}/`)).text();
    if (!index.includes('id="root"')) {
      throw new Error('this switchyard binary serves no web UI: run `npm run build` in web/, then rebuild the binary');
    }
    const doc = (await (await fetch(`${url}/api/openapi.json`)).json()) as { paths?: Record<string, unknown> };
    process.env.SWITCHYARD_E2E_URL = url;
    process.env.SWITCHYARD_E2E_PASSWORD = password;
    process.env.SWITCHYARD_E2E_OPERATOR_PASSWORD = users[1]!.password;
    process.env.SWITCHYARD_E2E_VIEWER_PASSWORD = users[2]!.password;
    process.env.SWITCHYARD_E2E_WS = doc.paths && '/api/v1/ws' in doc.paths ? '1' : '0';
    process.env.SWITCHYARD_E2E_USERS = doc.paths && '/api/v1/users' in doc.paths ? '1' : '0';
  } catch (e) {
    await stop();
    const tail = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n') : '';
    throw new Error(`${(e as Error).message}\n--- server log (tail) ---\n${tail}`);
  }
  return stop;
}
