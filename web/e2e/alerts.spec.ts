// Alert rules through the UI against the real server. Rules are evaluated every 15 s, so this
// checks managing and listing them, not firing.
import { expect, logIn, snap, test, VIEWER_EMAIL, viewerPassword } from './fixtures';

test('an admin creates an alert rule, sees the server’s validation on the field, and deletes it', async ({ page }) => {
  await logIn(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
  await expect(page.getByRole('heading', { name: 'Alerts', level: 1 })).toBeVisible();
  await expect(page.getByText('No alert rules yet.')).toBeVisible();

  await page.getByLabel('Name').fill('flaky failing');
  await page.getByLabel('Kind').selectOption('failure_rate');
  await page.getByLabel('Agent').selectOption('flaky');
  // A failure rate is a fraction: the server says so, under the field.
  await page.getByLabel('Threshold').fill('5');
  await page.getByRole('button', { name: 'Create rule' }).click();
  await expect(page.getByText('a failure_rate threshold is a fraction between 0 and 1')).toBeVisible();
  await expect(page.getByLabel('Threshold')).toHaveAttribute('aria-invalid', 'true');

  await page.getByLabel('Threshold').fill('0.5');
  await page.getByLabel('Window (s)').fill('600');
  await page.getByRole('button', { name: 'Create rule' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Created rule flaky failing.' })).toBeVisible();
  const row = page.locator('tr[data-rule="flaky failing"]');
  await expect(row).toContainText('Failure rate');
  await expect(row).toContainText('flaky');
  await expect(row).toContainText('> 50 %');
  await expect(row.locator('[data-alert-state]')).toBeVisible();

  // A second rule through the API, for a fuller picture.
  await page.request.post('/api/v1/alerts/rules', {
    headers: { authorization: `Bearer ${await page.evaluate(() => JSON.parse(localStorage.getItem('switchyard.session')!).accessToken)}` },
    data: { name: 'queue backlog', kind: 'queue_depth', threshold: 1000, window_s: 60 },
  });
  await page.reload();
  await expect(page.locator('tr[data-rule="queue backlog"]')).toContainText('all agents');
  await expect(page.getByRole('heading', { name: 'Recent events' })).toBeVisible();
  await snap(page, 'alerts');
  await page.setViewportSize({ width: 390, height: 800 });
  await expect(page.locator('tr[data-rule="flaky failing"]')).toBeVisible();
  await snap(page, 'alerts-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });

  await row.getByRole('button', { name: 'Delete rule flaky failing' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('Delete rule flaky failing?');
  await dialog.getByRole('button', { name: 'Delete rule' }).click();
  await expect(row).toHaveCount(0);
  await expect(page.locator('tr[data-rule="queue backlog"]')).toBeVisible();
});

test('a viewer sees alert rules read-only', async ({ page, api }) => {
  await api.post('/api/v1/alerts/rules', { name: 'no echo worker', kind: 'no_worker', agent: 'echo', threshold: 0, window_s: 60 });
  await logIn(page, VIEWER_EMAIL, viewerPassword());
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
  await expect(page.locator('tr[data-rule="no echo worker"]')).toContainText('No worker');
  await expect(page.getByRole('button', { name: 'Create rule' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: /^Delete/ })).toHaveCount(0);
  await snap(page, 'alerts-viewer');
});
