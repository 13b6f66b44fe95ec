// Loading, empty, error and "not on this server" states.
import type { ReactNode } from 'react';
import { apiErrorInfo, isNotAvailable } from '@/shared/api/errors';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

export function ErrorAlert({ error, title, onRetry }: { error: unknown; title?: string; onRetry?: () => void }) {
  const info = apiErrorInfo(error);
  if (!info) return null;
  return (
    <div className="alert alert-error" role="alert">
      {title && <strong>{title}: </strong>}
      {info.message}
      {info.requestId && <span className="muted small"> (request {info.requestId})</span>}
      {onRetry && (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function NotAvailable({ what }: { what: string }) {
  return (
    <div className="alert alert-info" role="status">
      <strong>{what} is not available on this server.</strong> This Switchyard server does not offer that part of the API
      yet; it will appear here once the server supports it.
    </div>
  );
}

/** An error box, or the "not available" notice when the server has no such endpoint. */
export function QueryError({ error, what, onRetry }: { error: unknown; what: string; onRetry?: () => void }) {
  if (isNotAvailable(error)) return <NotAvailable what={what} />;
  return <ErrorAlert error={error} title={`Could not load ${what.toLowerCase()}`} onRetry={onRetry} />;
}
