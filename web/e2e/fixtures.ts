// Shared helpers: the server under test, signing in through the UI, and API calls for setup.
import { test as base, expect, type APIRequestContext, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

export const ADMIN_EMAIL = 'admin@localhost';
export const OPERATOR_EMAIL = 'operator@example.com';
export const VIEWER_EMAIL = 'viewer@example.com';
export const operatorPassword = () => process.env.SWITCHYARD_E2E_OPERATOR_PASSWORD!;
export const viewerPassword = () => process.env.SWITCHYARD_E2E_VIEWER_PASSWORD!;
export const serverUrl = () => process.env.SWITCHYARD_E2E_URL!;
export const adminPassword = () => process.env.SWITCHYARD_E2E_PASSWORD!;
export const expectWebSocket = () => process.env.SWITCHYARD_E2E_WS === '1';

export const SCREENSHOTS = resolve(import.meta.dirname, '..', 'test-output', 'screenshots');

export async function snap(page: Page, name: string) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`), fullPage: true });
}

export async function logIn(page: Page, email = ADMIN_EMAIL, password = adminPassword()) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByTestId('live-indicator')).toContainText('Live');
}

export interface Api {
  token: string;
  post<T = unknown>(path: string, body?: unknown): Promise<T>;
  get<T = unknown>(path: string): Promise<T>;
}

export async function apiFor(request: APIRequestContext, email = ADMIN_EMAIL, password = adminPassword()): Promise<Api> {
  const login = await request.post('/api/v1/auth/login', { data: { email, password } });
  expect(login.ok()).toBeTruthy();
  const { access_token: token } = (await login.json()) as { access_token: string };
  const headers = { authorization: `Bearer ${token}` };
  return {
    token,
    async post(path, body) {
      const r = await request.post(path, { headers, data: body ?? {} });
      expect(r.ok(), `${path}: ${r.status()} ${await r.text()}`).toBeTruthy();
      return (await r.json()) as never;
    },
    async get(path) {
      const r = await request.get(path, { headers });
      expect(r.ok(), `${path}: ${r.status()}`).toBeTruthy();
      return (await r.json()) as never;
    },
  };
}

export const test = base.extend<{ api: Api }>({
  baseURL: async ({}, use) => use(serverUrl()),
  api: async ({ request }, use) => use(await apiFor(request)),
});

export { expect };
