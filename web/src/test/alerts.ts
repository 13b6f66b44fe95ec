// Alert rules and events for unit tests.
import type { AlertEvent, AlertRule } from '@/shared/api/types';

export function rule(id: string, name: string, over: Partial<AlertRule> = {}): AlertRule {
  return {
    id,
    name,
    kind: 'queue_depth',
    threshold: 10,
    window_s: 60,
    for_s: 0,
    state: { status: 'ok' },
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    ...over,
  };
}

export function alertEvent(id: string, ruleId: string, state: 'firing' | 'resolved', at: string): AlertEvent {
  return { id, rule_id: ruleId, rule_name: `rule ${ruleId}`, kind: 'queue_depth', state, value: 12, threshold: 10, at, message: `${state} ${id}`, notify_status: 'none', notify_attempts: 0 };
}
