// Schedules for unit tests.
import type { Schedule } from '@/shared/api/types';

export const TASK_A = '01900000-0000-7000-8000-0000000000a1';
export const TASK_B = '01900000-0000-7000-8000-0000000000b2';

/** `n` fire times `stepS` seconds apart, the first `firstS` seconds from now. */
export function runsFromNow(firstS: number, stepS: number, n = 5): string[] {
  const start = Math.floor(Date.now() / 1000) * 1000 + firstS * 1000;
  return Array.from({ length: n }, (_, i) => new Date(start + i * stepS * 1000).toISOString());
}

export function schedule(name: string, over: Partial<Schedule> = {}): Schedule {
  return {
    name,
    agent: 'echo',
    input: { report: 'daily' },
    cron: '0 2 * * *',
    timezone: 'Europe/Berlin',
    overlap: 'skip',
    catchup: 'latest',
    paused: false,
    owner: null,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    next_runs: runsFromNow(125, 86400),
    last_runs: [],
    ...over,
  };
}
