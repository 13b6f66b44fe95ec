import { ADMIN_EMAIL, expect, logIn, snap, test } from './fixtures';

test('a wrong password is explained; the right one signs in; logging out returns to the login page', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await snap(page, 'login');
  await page.getByLabel('Email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText(/password/i);

  await logIn(page);
  await expect(page.getByTestId('current-user')).toContainText(ADMIN_EMAIL);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  // Signed out for real: a protected page sends us back to the login page.
  await page.goto('/tasks');
  await expect(page).toHaveURL(/\/login\?next=%2Ftasks/);
});

test('an expired session refreshes itself; a revoked one ends with a message', async ({ page }) => {
  await logIn(page);
  // An access token the server rejects: the UI refreshes it and carries on.
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('switchyard.session')!);
    localStorage.setItem('switchyard.session', JSON.stringify({ ...s, accessToken: 'expired.token.value' }));
  });
  await page.goto('/agents');
  await expect(page.locator('tr[data-agent="echo"]')).toBeVisible();
  await expect(page.getByTestId('current-user')).toBeVisible();

  // A refresh token the server no longer accepts: back to the login page, with the reason.
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('switchyard.session')!);
    localStorage.setItem('switchyard.session', JSON.stringify({ ...s, accessToken: 'expired.token.value', refreshToken: 'revoked.refresh' }));
  });
  await page.goto('/workers');
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByText('Your session ended, please log in again')).toBeVisible();
  await logIn(page);
});
