// Keeps cached alert data current with live alert events: a new event goes to the top of the
// (first page of the) events lists it belongs to, and its rule's state flips to firing or ok.
// What an event cannot tell (a rule created elsewhere, pending states) is refetched.
import type { MiddlewareAPI, ThunkDispatch, UnknownAction } from '@reduxjs/toolkit';
import { api } from '@/app/api';
import type { AlertEvent, AlertRule } from '@/shared/api/types';
import { alertsApi, type AlertEventArgs } from './alertsApi';

// RTK Query thunks are typed against the full root state, which this module does not know.
type Dispatch = ThunkDispatch<any, unknown, UnknownAction>;
type RootLike = Parameters<typeof alertsApi.util.selectCachedArgsForQuery>[0];

/** The rule's state after `event` (an event only ever moves a rule to firing or back to ok). */
export function ruleAfterEvent(rule: AlertRule, event: AlertEvent): void {
  if (event.state === 'firing') {
    rule.state = { ...rule.state, status: 'firing', since: rule.state.status === 'firing' && rule.state.since ? rule.state.since : event.at, value: event.value };
  } else {
    rule.state = { ...rule.state, status: 'ok', since: null, value: event.value };
  }
}

export function applyAlertEventToCache(event: AlertEvent, store: MiddlewareAPI): void {
  const dispatch = store.dispatch as Dispatch;
  const state = store.getState() as RootLike;
  const refetch: ('AlertRule' | 'AlertEvent')[] = [];

  for (const args of alertsApi.util.selectCachedArgsForQuery(state, 'listAlertEvents') as AlertEventArgs[]) {
    if (args.cursor || (args.ruleId && args.ruleId !== event.rule_id)) continue;
    if (!alertsApi.endpoints.listAlertEvents.select(args)(state).data) {
      // Still loading: its answer may predate this event.
      refetch.push('AlertEvent');
      continue;
    }
    dispatch(
      alertsApi.util.updateQueryData('listAlertEvents', args, (page) => {
        if (page.items.some((e) => e.id === event.id)) return;
        page.items.unshift(event);
        page.items.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
      }),
    );
  }

  const rules = alertsApi.endpoints.listAlertRules.select()(state);
  if (rules.data) {
    if (rules.data.items.some((r) => r.id === event.rule_id)) {
      dispatch(
        alertsApi.util.updateQueryData('listAlertRules', undefined, (list) => {
          const rule = list.items.find((r) => r.id === event.rule_id);
          if (rule) ruleAfterEvent(rule, event);
        }),
      );
    } else {
      refetch.push('AlertRule');
    }
  } else if (rules.isLoading) {
    refetch.push('AlertRule');
  }

  if (refetch.length > 0) dispatch(api.util.invalidateTags([...new Set(refetch)]));
}

/** After a reconnect: alert events have no backlog, so read the lists again. */
export function refetchAlertsAfterReconnect(store: MiddlewareAPI): void {
  (store.dispatch as Dispatch)(api.util.invalidateTags(['AlertRule', 'AlertEvent']));
}
