// HTTP mocks for unit tests (never used by the end-to-end suite, which runs the real server).
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll } from 'vitest';

export const server = setupServer();

export function useMockServer() {
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, request_id: 'test', ...(details ? { details } : {}) } };
}
