// Screenshots of the main pages in dark mode and on a narrow window, for people to look at.
import { expect, logIn, snap, test } from './fixtures';

test.describe('dark mode', () => {
  test.use({ colorScheme: 'dark' });
  test('follows the system colour scheme', async ({ page }) => {
    await logIn(page);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(15, 19, 24)');
    await snap(page, 'overview-dark');
    await page.goto('/tasks');
    await expect(page.getByRole('heading', { name: 'Tasks' })).toBeVisible();
    await snap(page, 'tasks-dark');
    await page.goto('/tasks/new?agent=flaky');
    await expect(page.getByLabel(/^times/)).toBeVisible();
    await snap(page, 'submit-dark');
  });
});

test.describe('narrow window', () => {
  test.use({ viewport: { width: 390, height: 844 } });
  test('navigation folds into a menu', async ({ page }) => {
    await logIn(page);
    await expect(page.getByRole('navigation', { name: 'Main' })).toBeHidden();
    await snap(page, 'overview-narrow');
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tasks' }).click();
    await expect(page.getByRole('heading', { name: 'Tasks' })).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Main' })).toBeHidden();
    await snap(page, 'tasks-narrow');
  });
});
