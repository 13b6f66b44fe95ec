// Turning failed requests into words a person can act on.
import type { FetchBaseQueryError } from '@reduxjs/toolkit/query';
import type { SerializedError } from '@reduxjs/toolkit';

export interface Violation {
  /** JSON pointer into the submitted input, e.g. `/ms`; empty for the whole input. */
  path: string;
  keyword?: string;
  message: string;
}

export interface ApiErrorInfo {
  status: number | 'network' | 'unknown';
  code: string;
  message: string;
  requestId?: string;
  violations: Violation[];
}

type AnyError = FetchBaseQueryError | SerializedError | undefined | null | unknown;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export function apiErrorInfo(error: AnyError): ApiErrorInfo | null {
  if (!error) return null;
  if (!isRecord(error)) return { status: 'unknown', code: 'unknown', message: String(error), violations: [] };
  const status = error.status;
  if (typeof status === 'number') {
    const body = isRecord(error.data) && isRecord(error.data.error) ? error.data.error : null;
    if (body) {
      const details = isRecord(body.details) ? body.details : null;
      const violations = Array.isArray(details?.violations)
        ? (details.violations as unknown[]).filter(isRecord).map((v) => ({
            path: typeof v.path === 'string' ? v.path : '',
            keyword: typeof v.keyword === 'string' ? v.keyword : undefined,
            message: typeof v.message === 'string' ? v.message : 'is not valid',
          }))
        : [];
      return {
        status,
        code: typeof body.code === 'string' ? body.code : `http_${status}`,
        message: typeof body.message === 'string' ? body.message : `The server answered ${status}.`,
        requestId: typeof body.request_id === 'string' ? body.request_id : undefined,
        violations,
      };
    }
    return { status, code: `http_${status}`, message: statusText(status), violations: [] };
  }
  if (status === 'FETCH_ERROR' || status === 'TIMEOUT_ERROR') {
    return {
      status: 'network',
      code: 'network',
      message: 'Could not reach the Switchyard server. Check that it is running and try again.',
      violations: [],
    };
  }
  if (status === 'PARSING_ERROR') {
    return { status: 'unknown', code: 'bad_response', message: 'The server sent a response that could not be read.', violations: [] };
  }
  const message = typeof error.message === 'string' ? error.message : typeof error.error === 'string' ? error.error : 'Something went wrong.';
  return { status: 'unknown', code: 'unknown', message, violations: [] };
}

function statusText(status: number): string {
  if (status === 404) return 'Not found.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 401) return 'You are not signed in.';
  if (status >= 500) return `The server failed (${status}). Try again in a moment.`;
  return `The request failed (${status}).`;
}

export function errorMessage(error: AnyError): string {
  return apiErrorInfo(error)?.message ?? 'Something went wrong.';
}

/** The server has no such route (an older or newer server than this UI). */
export function isNotAvailable(error: AnyError): boolean {
  const info = apiErrorInfo(error);
  return !!info && ((info.status === 404 && info.code === 'route_not_found') || info.code === 'method_not_allowed');
}
