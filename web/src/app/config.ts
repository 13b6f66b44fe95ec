// Where the API is: the page's own origin (the binary serves both; Vite proxies in dev).
export function apiOrigin(): string {
  return globalThis.location?.origin ?? 'http://localhost';
}

export function apiUrl(path: string): string {
  return `${apiOrigin()}${path}`;
}

export function wsUrl(path: string): string {
  const origin = apiOrigin();
  return origin.replace(/^http/, 'ws') + path;
}
