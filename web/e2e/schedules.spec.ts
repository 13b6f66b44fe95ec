// Schedules through the UI against the real server: a schedule for the built-in echo agent
// every 2 seconds, its preview, its first firings, pausing it and running it now.
import { expect, logIn, snap, test } from './fixtures';

const NAME = 'e2e-every-two';

test('an admin schedules echo every 2 seconds, sees it fire, pauses it and runs it now', async ({ page }) => {
  await logIn(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
  await expect(page.getByRole('heading', { name: 'Schedules', level: 1 })).toBeVisible();
  await page.getByRole('link', { name: 'New schedule' }).click();
  await expect(page.getByRole('heading', { name: 'New schedule', level: 1 })).toBeVisible();

  await page.getByLabel(/^Name/).fill(NAME);
  await page.getByLabel(/^Agent/).selectOption('echo');
  await page.getByLabel(/^Input \(JSON\)/).fill('{"from": "schedule"}');
  await page.getByRole('button', { name: 'Every 2 seconds' }).click();
  await expect(page.getByLabel(/^Cron/)).toHaveValue('*/2 * * * * *');
  // The server's preview: five runs, two seconds apart.
  const preview = page.getByRole('list', { name: 'Next runs' });
  await expect(preview.getByRole('listitem')).toHaveCount(5);
  await expect(preview.getByRole('listitem').first()).toContainText(/^(now|in \d+ seconds?) · \w{3} \d{1,2} \w{3} \d\d:\d\d(:\d\d)?$/);
  await snap(page, 'schedule-new');
  await page.getByRole('button', { name: 'Create schedule' }).click();

  await expect(page).toHaveURL(new RegExp(`/schedules/${NAME}$`));
  await expect(page.getByRole('heading', { name: NAME, level: 1 })).toBeVisible();
  await expect(page.getByRole('list', { name: 'Next runs' }).first().getByRole('listitem')).toHaveCount(5);
  // It fires: a run with its task's status appears (the page reads the schedule every 5 s).
  const lastRuns = page.getByRole('table', { name: 'Last runs' });
  await expect(lastRuns.locator('[data-status]').first()).toBeVisible({ timeout: 15_000 });
  await snap(page, 'schedule-detail');

  await page.getByRole('button', { name: `Pause ${NAME}` }).click();
  await expect(page.getByRole('button', { name: `Resume ${NAME}` })).toBeVisible();
  await expect(page.getByText('Paused: nothing fires until it is resumed.')).toBeVisible();

  await page.getByRole('button', { name: `Run ${NAME} now` }).click();
  const started = page.getByRole('status').filter({ hasText: 'Run started' });
  await started.getByRole('link').click();
  await expect(page.getByRole('heading', { name: /^Task / })).toBeVisible();
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
  await expect(page.getByRole('region', { name: 'Input' })).toContainText('"from": "schedule"');
  await expect(page.getByRole('link', { name: NAME })).toHaveAttribute('href', `/schedules/${NAME}`);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
  const row = page.locator(`tr[data-schedule="${NAME}"]`);
  await expect(row).toContainText('*/2 * * * * *');
  await expect(row.locator('.tag-paused')).toBeVisible();
  await expect(row.locator('[data-status]')).toBeVisible();
  await snap(page, 'schedules');
});
