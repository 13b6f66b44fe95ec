import { expect, logIn, snap, test } from './fixtures';

test('create an API key: the secret is shown once, with a copy button', async ({ page, context, baseURL, api, request }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  await logIn(page);
  await page.getByRole('link', { name: 'API keys' }).click();
  await expect(page.getByRole('heading', { name: 'API keys and sessions' })).toBeVisible();
  await page.getByLabel('Name').fill('ci pipeline');
  await page.getByRole('checkbox', { name: /submit/ }).check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const panel = page.getByTestId('new-key-secret');
  await expect(panel).toContainText("you won't see this again");
  const secret = await panel.getByLabel('API key secret').inputValue();
  expect(secret).toMatch(/^sy_/);
  await panel.getByRole('button', { name: 'Copy key' }).click();
  await expect(panel.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  await snap(page, 'api-key-created');

  // The key works against the API.
  const me = await page.request.get('/api/v1/auth/me', { headers: { authorization: `Bearer ${secret}` } });
  expect(me.ok()).toBeTruthy();

  await panel.getByRole('button', { name: 'I have stored it' }).click();
  await expect(panel).toBeHidden();
  const row = page.locator('tr[data-key="ci pipeline"]');
  await expect(row).toContainText(secret.slice(0, 6));
  await snap(page, 'api-keys');
  await row.getByRole('button', { name: 'Revoke ci pipeline' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click();
  await expect(row).toContainText('Revoked');
  const after = await page.request.get('/api/v1/auth/me', { headers: { authorization: `Bearer ${secret}` } });
  expect(after.status()).toBe(401);

  // Sessions: this browser's is marked; another one (the test's API login) can be signed out.
  const sessions = page.getByRole('region', { name: 'Where you are signed in' });
  await expect(sessions.locator('tr').filter({ hasText: 'this one' })).toHaveCount(1);
  const other = sessions.locator('tr').filter({ hasText: 'Sign out' }).last();
  await other.getByRole('button', { name: /^Sign out/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Sign it out' }).click();
  await expect(page.getByRole('dialog')).toBeHidden();
  await expect(page.getByTestId('current-user')).toBeVisible();
  // The most recent other session is the API login of this test: its token no longer works.
  const gone = await request.get('/api/v1/auth/me', { headers: { authorization: `Bearer ${api.token}` } });
  expect(gone.status()).toBe(401);
});

test('an admin edits an agent’s retry policy and fallback', async ({ page }) => {
  await logIn(page);
  await page.getByRole('link', { name: 'Agents' }).click();
  await snap(page, 'agents');
  await page.getByRole('link', { name: 'Edit flaky' }).click();
  await expect(page.getByRole('heading', { name: 'Edit flaky' })).toBeVisible();
  await page.getByLabel('Attempts in total').fill('7');
  await page.getByLabel('Backoff cap (ms)').fill('100');
  await page.getByLabel('Backoff base (ms)').fill('500');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByText('must not be below the base delay')).toBeVisible();
  await page.getByLabel('Backoff cap (ms)').fill('8000');
  await page.getByLabel('Fallback agent').selectOption('echo');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
  await snap(page, 'agent-edit');
  await page.getByRole('link', { name: 'All agents' }).click();
  const row = page.locator('tr[data-agent="flaky"]');
  await expect(row).toContainText('7 attempts');
  await expect(row).toContainText('echo');
});

test('workers and the overview show the running system', async ({ page, api }) => {
  await api.post('/api/v1/tasks', { agent: 'echo', input: { hello: 'overview' } });
  await api.post('/api/v1/tasks', { agent: 'flaky', input: {} });
  await logIn(page);
  await expect(page.getByText('Worker slots in use')).toBeVisible();
  await expect(page.getByRole('img', { name: /Throughput/ })).toBeVisible();
  // The overview polls the server's one-minute series every 15 s: allow two polls.
  await expect(page.locator('.stat').filter({ hasText: 'Finished' }).locator('.stat-value')).not.toHaveText('0', {
    timeout: 40_000,
  });
  await page.waitForTimeout(1500);
  await snap(page, 'overview');
  await page.getByRole('link', { name: 'Workers' }).click();
  await expect(page.getByRole('cell', { name: /builtin/ }).first()).toBeVisible();
  await snap(page, 'workers');
});

test('users page: admins add users, change roles, disable and enable them', async ({ page, request }) => {
  await logIn(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
  if (process.env.SWITCHYARD_E2E_USERS !== '1') {
    await expect(page.getByText('User administration is not available on this server.')).toBeVisible();
    await snap(page, 'users');
    return;
  }
  await page.getByLabel('Email', { exact: true }).fill('new.operator@example.com');
  await page.getByLabel('Password', { exact: true }).fill('a-long-password-for-e2e');
  await page.getByLabel('Role', { exact: true }).selectOption('operator');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Added new.operator@example.com' })).toBeVisible();
  const row = page.locator('tr[data-user="new.operator@example.com"]');
  await expect(row).toContainText('Active');

  await row.getByLabel('Role of new.operator@example.com').selectOption('viewer');
  await expect(row.getByLabel('Role of new.operator@example.com')).toHaveValue('viewer');
  await row.getByRole('button', { name: 'Disable new.operator@example.com' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Disable user' }).click();
  await expect(row).toContainText('Disabled');
  const refused = await request.post('/api/v1/auth/login', { data: { email: 'new.operator@example.com', password: 'a-long-password-for-e2e' } });
  expect(refused.ok()).toBe(false);
  await snap(page, 'users');
  await row.getByRole('button', { name: 'Enable' }).click();
  await expect(row).toContainText('Active');
  const allowed = await request.post('/api/v1/auth/login', { data: { email: 'new.operator@example.com', password: 'a-long-password-for-e2e' } });
  expect(allowed.ok()).toBe(true);
  const me = (await (await request.get('/api/v1/auth/me', { headers: { authorization: `Bearer ${(await allowed.json()).access_token}` } })).json()) as {
    user: { role: string };
  };
  expect(me.user.role).toBe('viewer');
});
