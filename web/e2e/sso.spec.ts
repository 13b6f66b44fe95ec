// Single sign-on through a real OpenID provider (panva's oidc-provider, started by .ci/run
// from deploy/testing/oidc-provider and named by TEST_OIDC_ISSUER): the browser signs in on
// the provider's own form and lands in the app as the role its groups map to; a user with
// no mapped role is refused with a clear message. These tests run their own server, set up
// for single sign-on with SSO-only login and a break-glass admin.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect, test } from '@playwright/test';
import { placeServer, startServer, type RunningServer } from './server';

const issuer = process.env.TEST_OIDC_ISSUER;
const clientId = process.env.TEST_OIDC_CLIENT_ID ?? 'switchyard-test';
const clientSecret = process.env.TEST_OIDC_CLIENT_SECRET ?? 'switchyard-test-secret';

if (!issuer) {
  console.warn('SKIPPED: TEST_OIDC_ISSUER not set — the single sign-on end-to-end tests did not run (.ci/run starts the provider)');
}

interface SsoServer extends RunningServer {
  adminPassword: string;
}

async function startSsoServer(): Promise<SsoServer> {
  const place = await placeServer('switchyard-e2e-sso-');
  const adminPassword = `e2e-${randomBytes(12).toString('hex')}`;
  const configFile = join(place.dataDir, 'switchyard.toml');
  writeFileSync(
    configFile,
    `[auth]
password_login = false
break_glass_email = "admin@localhost"

[auth.oidc]
issuer = ${JSON.stringify(issuer)}
client_id = ${JSON.stringify(clientId)}
client_secret_env = "E2E_OIDC_CLIENT_SECRET"
name = "Test IdP"
scopes = ["openid", "email", "profile", "groups"]
redirect_url = "${place.url}/api/v1/auth/oidc/callback"
role_claim = "groups"
role_map = { "switchyard-operators" = "operator", "switchyard-admins" = "admin" }
`,
  );
  const server = await startServer(place, {
    logName: 'server-sso.log',
    globalArgs: ['--config', configFile],
    env: { SWITCHYARD_ADMIN_PASSWORD: adminPassword, E2E_OIDC_CLIENT_SECRET: clientSecret },
  });
  return { ...server, adminPassword };
}

test.describe('single sign-on', () => {
  test.skip(!issuer, 'TEST_OIDC_ISSUER is not set: .ci/run starts the OpenID provider');

  let server: SsoServer;
  test.beforeAll(async () => {
    server = await startSsoServer();
  });
  test.afterAll(async () => {
    await server?.stop();
  });

  test('signs in on the provider’s form and lands in the app as the mapped role', async ({ page }) => {
    await page.goto(`${server.url}/tasks`);
    await expect(page).toHaveURL(/\/login/);
    // Password login is off: only the SSO button, and the break-glass link.
    await expect(page.getByLabel('Email')).toHaveCount(0);
    await expect(page.getByRole('button', { name: 'Administrator sign-in' })).toBeVisible();
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();

    // The provider's own sign-in form, on the provider's origin.
    await expect(page).toHaveURL(new RegExp(`^${issuer!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/interaction/`));
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toHaveText('Invalid username or password.');
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('alice-password');
    await page.getByRole('button', { name: 'Sign in' }).click();

    // Back in the app, where the user wanted to go, as the role alice's group maps to.
    await expect(page).toHaveURL(`${server.url}/tasks`);
    await expect(page.getByTestId('current-user')).toContainText('alice@example.com');
    await expect(page.getByTestId('current-user')).toContainText('operator');
    // No token or code is left in the address or the history.
    expect(page.url()).not.toContain('sso_code');
    // The session survives a reload like a password login's.
    await page.reload();
    await expect(page.getByTestId('current-user')).toContainText('alice@example.com');
  });

  test('refuses a user whose groups map to no role, and says why', async ({ page }) => {
    await page.goto(`${server.url}/login`);
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    await page.getByLabel('Username').fill('bob');
    await page.getByLabel('Password').fill('bob-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${server.url}/login?sso_error=no_role`);
    await expect(page.getByTestId('sso-error')).toContainText('Your account has no role in Switchyard');
    await expect(page.getByTestId('sso-error')).toContainText('no_role');
    await expect(page.getByTestId('current-user')).toHaveCount(0);
  });

  test('lets the break-glass admin in with a password while password login is off', async ({ page }) => {
    await page.goto(`${server.url}/login`);
    await page.getByRole('button', { name: 'Administrator sign-in' }).click();
    await page.getByLabel('Email').fill('admin@localhost');
    await page.getByLabel('Password').fill(server.adminPassword);
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect(page.getByTestId('current-user')).toContainText('admin@localhost');
  });
});
