// Starts `switchyard dev` on a fresh data directory and a free port, waits until it is ready,
// and stops it after the run. The binary is $SWITCHYARD_BIN or ../target/release/switchyard.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { placeServer, startServer } from './server';

export default async function globalSetup() {
  const place = await placeServer('switchyard-e2e-');
  const { bin, dataDir } = place;
  const password = `e2e-${randomBytes(12).toString('hex')}`;
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
  // Metrics roll up every second (default ten), so the overview's series show finished
  // tasks on its next poll instead of up to one rollup interval later. Uploads are limited
  // to 1 MiB, so files.spec.ts can see a file refused for its size.
  const server = await startServer(place, {
    logName: 'server.log',
    env: {
      SWITCHYARD_ADMIN_PASSWORD: password,
      SWITCHYARD__MONITORING__ROLLUP_INTERVAL_MS: '1000',
      SWITCHYARD__FILES__MAX_BYTES: String(1024 * 1024),
    },
  });
  const { url, stop } = server;

  try {
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
    throw new Error(`${(e as Error).message}\n--- server log (tail) ---\n${server.logTail()}`);
  }
  return stop;
}
