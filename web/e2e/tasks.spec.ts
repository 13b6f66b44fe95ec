import type { WebSocket as PwWebSocket } from '@playwright/test';
import { expect, expectWebSocket, logIn, snap, test } from './fixtures';

interface Task {
  id: string;
  status: string;
}

test('submit a task through the generated form and watch it finish live', async ({ page }) => {
  const frames: string[] = [];
  page.on('websocket', (ws: PwWebSocket) => {
    if (ws.url().endsWith('/api/v1/ws')) ws.on('framereceived', (f) => frames.push(String(f.payload)));
  });
  await logIn(page);
  await expect(page.getByTestId('live-indicator')).toHaveText(expectWebSocket() ? 'Live · WebSocket' : 'Live · SSE');

  await page.getByRole('link', { name: 'Submit task' }).click();
  // The overview has an agent picker too: wait for the submit page (a lazily loaded route)
  // so the choice lands on its form and not on the page being left.
  await expect(page.getByRole('heading', { name: 'Submit a task' })).toBeVisible();
  await page.getByRole('form', { name: 'Submit a task' }).getByLabel(/^Agent/).selectOption('slow');
  await expect(page).toHaveURL(/agent=slow/);
  const ms = page.getByLabel(/^ms/);
  await expect(ms).toHaveValue('5000');
  // The form checks the schema (maximum 600000) before sending.
  await ms.fill('700000');
  await page.getByRole('button', { name: 'Submit task' }).click();
  await expect(page.getByText('must be at most 600000')).toBeVisible();
  await ms.fill('2500');
  await snap(page, 'submit-task');
  await page.getByRole('button', { name: 'Submit task' }).click();

  const row = page.getByTestId('recent-submissions').locator('li').first();
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', /queued|running/);
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'running');
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'succeeded', { timeout: 20_000 });
  if (expectWebSocket()) expect(frames.some((f) => f.includes('"type":"event"'))).toBe(true);

  await row.getByRole('link').click();
  await expect(page.getByRole('heading', { name: /^Task / })).toBeVisible();
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
  await expect(page.getByRole('region', { name: 'Input' })).toContainText('"ms": 2500');
  await expect(page.getByRole('region', { name: 'Output' })).toContainText('"slept_ms": 2500');
  await expect(page.getByRole('list', { name: 'Attempts' })).toContainText('Attempt 1');
  await expect(page.getByRole('log', { name: 'Task log' })).toContainText('sleeping 2500 ms');
  await snap(page, 'task-detail');
});

test('the tasks table follows new tasks and their status without a reload', async ({ page, api }) => {
  await logIn(page);
  await page.getByRole('link', { name: 'Tasks', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Tasks' })).toBeVisible();
  // The first page is in: the new task must come from live events, not from this load.
  await expect(page.getByTestId('task-table').or(page.getByText('No tasks yet.'))).toBeVisible();
  // Long enough that a busy machine still shows the row while the task runs.
  const task = await api.post<Task>('/api/v1/tasks', { agent: 'slow', input: { ms: 6000 } });
  const row = page.locator(`tr[data-task-id="${task.id}"]`);
  await expect(row).toBeVisible();
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'running');
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'succeeded');

  // Filters live in the URL and narrow the list.
  await page.getByLabel('Agent').selectOption('slow');
  await expect(page).toHaveURL(/agent=slow/);
  await page.getByRole('checkbox', { name: 'Succeeded' }).check();
  await expect(page).toHaveURL(/status=succeeded/);
  await expect(row).toBeVisible();
  await snap(page, 'tasks');
});

test('cancel a slow task from its page, after confirming', async ({ page, api }) => {
  const task = await api.post<Task>('/api/v1/tasks', { agent: 'slow', input: { ms: 120000 } });
  await logIn(page);
  await page.goto(`/tasks/${task.id}`);
  await expect(page.getByTestId('task-status')).toContainText('Running');
  await expect(page.getByRole('log', { name: 'Task log' })).toContainText('sleeping 120000 ms');
  await page.getByRole('button', { name: /^Cancel task/ }).click();
  const dialog = page.getByRole('dialog', { name: 'Cancel this task?' });
  await expect(dialog).toBeVisible();
  await dialog.getByRole('button', { name: 'Cancel task' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId('task-status')).toContainText('Cancelled');
  await expect(page.getByRole('button', { name: /^Retry task/ })).toBeVisible();
  const stored = await api.get<Task>(`/api/v1/tasks/${task.id}`);
  expect(stored.status).toBe('cancelled');
});

test('a task that fails for good is a dead letter and can be replayed', async ({ page, api }) => {
  const task = await api.post<Task>('/api/v1/tasks', { agent: 'fail', input: { times: 100, class: 'permanent' } });
  await logIn(page);
  await page.getByRole('link', { name: 'Dead letters' }).click();
  const row = page.locator(`tr[data-task-id="${task.id}"]`);
  await expect(row).toBeVisible();
  await expect(row).toContainText('simulated permanent failure');
  await snap(page, 'dead-letters');
  await row.getByRole('button', { name: /^Replay task/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Replay task' }).click();
  await expect(page.getByRole('dialog')).toBeHidden();

  // The replay ran (and, failing permanently again, is dead again with a second attempt).
  await page.goto(`/tasks/${task.id}`);
  await expect(page.getByRole('list', { name: 'Attempts' })).toContainText('Attempt 2');
  await expect(page.getByTestId('task-status')).toContainText('Dead');
  const stored = await api.get<Task & { attempts: unknown[] }>(`/api/v1/tasks/${task.id}`);
  expect(stored.attempts).toHaveLength(2);
});

test('without a working WebSocket, live updates fall back to Server-Sent Events', async ({ page, api }) => {
  // A proxy that refuses WebSockets: the socket closes before authenticating.
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => ws.close({ code: 1011, reason: 'no websockets here' }));
  await logIn(page);
  await expect(page.getByTestId('live-indicator')).toHaveText('Live · SSE');
  await page.getByRole('link', { name: 'Tasks', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Tasks' })).toBeVisible();
  const task = await api.post<Task>('/api/v1/tasks', { agent: 'slow', input: { ms: 1000 } });
  const row = page.locator(`tr[data-task-id="${task.id}"]`);
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'succeeded');
  // The task page follows its own resumable stream.
  await row.getByRole('link').click();
  await expect(page.getByRole('log', { name: 'Task log' })).toContainText('sleeping 1000 ms');
});
