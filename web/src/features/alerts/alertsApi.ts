// Alert rules (reading: any role; managing: admins) and the events of rules starting and
// stopping to fire. Both are patched live by `liveAlerts.ts`.
import { api } from '@/app/api';
import type { AlertEventPage, AlertRule, AlertRuleSpec, Items } from '@/shared/api/types';

export interface AlertEventArgs {
  ruleId?: string;
  cursor?: string;
  limit?: number;
}

export const EVENTS_LIMIT = 50;

export const alertsApi = api.injectEndpoints({
  endpoints: (build) => ({
    listAlertRules: build.query<Items<AlertRule>, void>({
      query: () => '/alerts/rules',
      providesTags: ['AlertRule'],
    }),
    createAlertRule: build.mutation<AlertRule, AlertRuleSpec>({
      query: (body) => ({ url: '/alerts/rules', method: 'POST', body }),
      invalidatesTags: ['AlertRule'],
    }),
    deleteAlertRule: build.mutation<void, string>({
      query: (id) => ({ url: `/alerts/rules/${encodeURIComponent(id)}`, method: 'DELETE' }),
      invalidatesTags: ['AlertRule'],
    }),
    listAlertEvents: build.query<AlertEventPage, AlertEventArgs>({
      query: ({ ruleId, cursor, limit = EVENTS_LIMIT }) => ({
        url: '/alerts/events',
        params: { limit, ...(ruleId ? { rule_id: ruleId } : {}), ...(cursor ? { cursor } : {}) },
      }),
      providesTags: ['AlertEvent'],
    }),
  }),
});

export const { useListAlertRulesQuery, useCreateAlertRuleMutation, useDeleteAlertRuleMutation, useListAlertEventsQuery } = alertsApi;
