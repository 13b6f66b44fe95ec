// The audit log (`GET /api/v1/audit`, admins only): who did what, newest first, a page at a
// time. Entries never change, so a page once loaded is kept as it is.
import { api } from '@/app/api';
import type { AuditPage } from '@/shared/api/types';

export interface AuditFilters {
  /** A user or API key id, or a name: an email, `system`, `cli`. */
  actor?: string;
  /** One action (`auth.login`) or a family ending with a dot (`auth.`). */
  action?: string;
  /** A kind (`agent`) or one target (`agent:translate`). */
  target?: string;
  /** RFC 3339. */
  since?: string;
  until?: string;
}

export interface AuditArgs extends AuditFilters {
  /** `next_cursor` of the page before. */
  cursor?: string;
  limit?: number;
}

export const AUDIT_PAGE_SIZE = 50;

export const auditApi = api.injectEndpoints({
  endpoints: (build) => ({
    listAudit: build.query<AuditPage, AuditArgs>({
      query: (args) => {
        const params: Record<string, string> = { limit: String(args.limit ?? AUDIT_PAGE_SIZE) };
        for (const key of ['actor', 'action', 'target', 'since', 'until', 'cursor'] as const) {
          const value = args[key]?.trim();
          if (value) params[key] = value;
        }
        return { url: '/audit', params };
      },
    }),
  }),
});

export const { useListAuditQuery } = auditApi;
