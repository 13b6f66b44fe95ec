import type { MiddlewareAPI } from '@reduxjs/toolkit';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { server, useMockServer } from '@/test/msw';
import { signedInStore } from '@/test/utils';
import { alertEvent, rule } from '@/test/alerts';
import { alertsApi } from './alertsApi';
import { applyAlertEventToCache } from './liveAlerts';

useMockServer();

describe('applyAlertEventToCache', () => {
  it('puts a new event on top of the first pages it belongs to, once, and flips the rule’s state', async () => {
    let rulesFetched = 0;
    server.use(
      http.get('*/api/v1/alerts/rules', () => {
        rulesFetched++;
        return HttpResponse.json({ items: [rule('r1', 'queue'), rule('r2', 'other')] });
      }),
      http.get('*/api/v1/alerts/events', ({ request }) => {
        const ruleId = new URL(request.url).searchParams.get('rule_id');
        return HttpResponse.json({ items: ruleId ? [] : [alertEvent('e0', 'r2', 'firing', '2026-01-01T00:00:00Z')], next_cursor: null });
      }),
    );
    const store = signedInStore('viewer');
    await store.dispatch(alertsApi.endpoints.listAlertRules.initiate());
    await store.dispatch(alertsApi.endpoints.listAlertEvents.initiate({}));
    await store.dispatch(alertsApi.endpoints.listAlertEvents.initiate({ ruleId: 'r2' }));
    const api = store as unknown as MiddlewareAPI;

    const firing = alertEvent('e1', 'r1', 'firing', '2026-01-01T00:05:00Z');
    applyAlertEventToCache(firing, api);
    applyAlertEventToCache(firing, api);
    const state = store.getState();
    expect(alertsApi.endpoints.listAlertEvents.select({})(state).data!.items.map((e) => e.id)).toEqual(['e1', 'e0']);
    expect(alertsApi.endpoints.listAlertEvents.select({ ruleId: 'r2' })(state).data!.items).toEqual([]);
    const r1 = alertsApi.endpoints.listAlertRules.select()(state).data!.items.find((r) => r.id === 'r1')!;
    expect(r1.state).toMatchObject({ status: 'firing', since: '2026-01-01T00:05:00Z', value: 12 });

    applyAlertEventToCache(alertEvent('e2', 'r1', 'resolved', '2026-01-01T00:09:00Z'), api);
    const after = store.getState();
    expect(alertsApi.endpoints.listAlertEvents.select({})(after).data!.items.map((e) => e.id)).toEqual(['e2', 'e1', 'e0']);
    expect(alertsApi.endpoints.listAlertRules.select()(after).data!.items.find((r) => r.id === 'r1')!.state).toMatchObject({ status: 'ok', since: null });
    expect(rulesFetched).toBe(1);
  });

  it('refetches the rules when the event is about a rule it has not seen', async () => {
    let rulesFetched = 0;
    server.use(
      http.get('*/api/v1/alerts/rules', () => {
        rulesFetched++;
        return HttpResponse.json({ items: rulesFetched === 1 ? [] : [rule('r9', 'new', { state: { status: 'firing', since: '2026-01-01T00:00:00Z' } })] });
      }),
    );
    const store = signedInStore('admin');
    const sub = store.dispatch(alertsApi.endpoints.listAlertRules.initiate());
    await sub;
    applyAlertEventToCache(alertEvent('e1', 'r9', 'firing', '2026-01-01T00:00:00Z'), store as unknown as MiddlewareAPI);
    await expect.poll(() => rulesFetched).toBe(2);
    await expect.poll(() => alertsApi.endpoints.listAlertRules.select()(store.getState()).data?.items[0]?.state.status).toBe('firing');
    sub.unsubscribe();
  });
});
