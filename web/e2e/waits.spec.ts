// Durable waits through the browser, with a real SDK worker: the Rust SDK's conformance worker
// (agents `conf-wait` and `conf-parent`) runs as a process against the server under test.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { apiFor, expect, logIn, serverUrl, snap, test as base } from './fixtures';

interface Task {
  id: string;
  status: string;
  output?: unknown;
}

const WORKER_BIN = process.env.CONFORMANCE_RUST_WORKER ?? resolve(import.meta.dirname, '..', '..', 'target', 'debug', 'switchyard-conformance-worker');
const WORKER_NAME = 'e2e-waits';
const WORKER_LOG = resolve(import.meta.dirname, '..', 'test-output', 'conformance-worker.log');

function logTail(): string {
  return existsSync(WORKER_LOG) ? readFileSync(WORKER_LOG, 'utf8').split('\n').slice(-20).join('\n') : '';
}

/** The conformance worker as a real process, with a fresh worker-scoped API key; stopped (drained) afterwards. */
const test = base.extend<object, { sdkWorker: void }>({
  sdkWorker: [
    async ({ playwright }, use) => {
      if (!existsSync(WORKER_BIN)) {
        throw new Error(
          `no conformance worker at ${WORKER_BIN}: build it with \`cargo build -p switchyard-sdk --bin switchyard-conformance-worker\` ` +
            '(scripts/test.sh has it built before the end-to-end tests), or point CONFORMANCE_RUST_WORKER at one',
        );
      }
      const request = await playwright.request.newContext({ baseURL: serverUrl() });
      const api = await apiFor(request);
      const { secret } = await api.post<{ secret: string }>('/api/v1/api-keys', { name: `${WORKER_NAME}-${Date.now()}`, scopes: ['worker'] });

      mkdirSync(resolve(WORKER_LOG, '..'), { recursive: true });
      const log = createWriteStream(WORKER_LOG);
      const child = spawn(WORKER_BIN, [serverUrl()], {
        env: { ...process.env, SWITCHYARD_API_KEY: secret, WORKER_NAME, WORKER_SLOTS: '4', RUST_BACKTRACE: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.pipe(log);
      child.stderr.pipe(log);
      let exited: string | null = null;
      const exit = new Promise<void>((res) =>
        child.once('exit', (code, signal) => {
          exited = `code ${code}, signal ${signal}`;
          res();
        }),
      );
      try {
        // Connected once the server lists it, serving the agents the tests use.
        await expect
          .poll(
            async () => {
              if (exited) throw new Error(`the conformance worker exited (${exited}):\n${logTail()}`);
              const { items } = await api.get<{ items: { name: string; agents: string[] }[] }>('/api/v1/workers');
              return items.some((w) => w.name === WORKER_NAME && w.agents.includes('conf-wait') && w.agents.includes('conf-parent'));
            },
            { message: `the conformance worker did not connect with conf-wait and conf-parent (its log: ${WORKER_LOG})`, timeout: 30_000 },
          )
          .toBe(true);
        await use();
      } finally {
        // SIGTERM drains it: it takes nothing new, finishes what runs and exits.
        if (!exited) {
          child.kill('SIGTERM');
          const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exit;
          clearTimeout(force);
        }
        log.end();
        await request.dispose();
      }
    },
    { scope: 'worker', auto: true },
  ],
});

test('approve a task that waits for the signal `approval`, in the browser', async ({ page, api }) => {
  const task = await api.post<Task>('/api/v1/tasks', { agent: 'conf-wait', input: { signal: 'approval' } });
  await logIn(page);

  // The tasks list filters on the new status.
  await page.goto('/tasks?status=waiting');
  const row = page.locator(`tr[data-task-id="${task.id}"]`);
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'waiting');
  await expect(row.locator('[data-status]')).toHaveAttribute('title', 'Waiting for signal approval');
  await row.getByRole('link').first().click();

  await expect(page.getByTestId('task-status')).toContainText('Waiting');
  await expect(page.getByTestId('task-wait')).toHaveText('Waiting for signal approval');
  const form = page.getByRole('form', { name: 'Send signal approval' });
  // Checked before it is sent.
  await form.getByLabel('Payload (JSON)').fill('{"approved": yes}');
  await form.getByRole('button', { name: 'Send' }).click();
  await expect(form.getByRole('alert')).toContainText('The payload is not valid JSON');
  await snap(page, 'task-waiting-signal');

  await form.getByRole('button', { name: 'Approve' }).click();
  // Live: the signal arrives, the task runs again and finishes with the payload in its output.
  await expect(page.getByRole('list', { name: 'Signals received' })).toContainText('{"approved":true}');
  await expect(page.getByTestId('task-status')).toContainText('Succeeded', { timeout: 30_000 });
  await expect(page.getByTestId('task-wait')).toBeHidden();
  await expect(form).toBeHidden();
  const output = page.getByRole('region', { name: 'Output' });
  await expect(output).toContainText('"approved": true');
  await expect(output).toContainText('"timed_out": false');
  // The wait is a durable step whose result is the payload.
  await expect(page.getByRole('list', { name: 'Steps' })).toContainText('signal:approval');
  await snap(page, 'task-approved');

  const done = await api.get<Task>(`/api/v1/tasks/${task.id}`);
  expect(done).toMatchObject({ status: 'succeeded', output: { slept: false, signal: { approved: true }, timed_out: false } });
});

test('a parent task shows the children it spawned as a tree, each linking to its page', async ({ page, api }) => {
  const parent = await api.post<Task>('/api/v1/tasks', { agent: 'conf-parent', input: { messages: ['one', 'two'] } });
  await logIn(page);
  await page.goto(`/tasks/${parent.id}`);
  const tree = page.getByRole('list', { name: 'Child tasks' });
  await expect(tree.getByRole('listitem')).toHaveCount(2);
  await expect(tree.locator('[data-status="succeeded"]')).toHaveCount(2, { timeout: 30_000 });
  await expect(page.getByTestId('task-status')).toContainText('Succeeded', { timeout: 30_000 });
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('"message": "two"');
  await snap(page, 'task-children');

  await tree.getByRole('link').first().click();
  await expect(page.getByRole('heading', { name: /^Task / })).toBeVisible();
  await expect(page.getByRole('link', { name: parent.id })).toBeVisible();
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
});
