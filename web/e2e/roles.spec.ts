// People see only the buttons their role can use.
import { apiFor, expect, logIn, OPERATOR_EMAIL, operatorPassword, snap, test, VIEWER_EMAIL, viewerPassword } from './fixtures';

test('a viewer can look but has no submit, cancel, retry or edit buttons', async ({ page }) => {
  await logIn(page, VIEWER_EMAIL, viewerPassword());
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Tasks' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Submit task' })).toHaveCount(0);
  await expect(nav.getByRole('link', { name: 'Users' })).toHaveCount(0);

  await nav.getByRole('link', { name: 'Tasks' }).click();
  await expect(page.getByText('No tasks yet.')).toBeVisible();
  await expect(page.getByRole('link', { name: 'Submit task' })).toHaveCount(0);

  await nav.getByRole('link', { name: 'Agents' }).click();
  await expect(page.locator('tr[data-agent="slow"]')).toBeVisible();
  await expect(page.getByRole('link', { name: 'New agent' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: /^Edit / })).toHaveCount(0);
  await expect(page.locator('tr[data-agent="slow"]').getByRole('link', { name: 'Submit' })).toHaveCount(0);

  await page.goto('/tasks/new');
  await expect(page.getByText(/can look at tasks but not submit them/)).toBeVisible();
  await page.goto('/agents/slow');
  await expect(page.getByText('Only admins can change agents.')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Save changes' })).toHaveCount(0);

  await page.goto('/api-keys');
  await expect(page.getByRole('checkbox', { name: /admin/ })).toBeDisabled();
  await snap(page, 'viewer-agents');
});

test('an operator submits and cancels their own tasks, but does not edit agents', async ({ page, playwright, baseURL }) => {
  const request = await playwright.request.newContext({ baseURL });
  const operator = await apiFor(request, OPERATOR_EMAIL, operatorPassword());
  const task = await operator.post<{ id: string }>('/api/v1/tasks', { agent: 'slow', input: { ms: 120000 } });
  await logIn(page, OPERATOR_EMAIL, operatorPassword());
  await page.goto('/agents');
  await expect(page.locator('tr[data-agent="slow"]').getByRole('link', { name: 'Submit' })).toBeVisible();
  await expect(page.getByRole('link', { name: /^Edit / })).toHaveCount(0);

  await page.goto(`/tasks/${task.id}`);
  await expect(page.getByTestId('task-status')).toContainText('Running');
  await page.getByRole('button', { name: /^Cancel task/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel task' }).click();
  await expect(page.getByTestId('task-status')).toContainText('Cancelled');
  await request.dispose();
});
