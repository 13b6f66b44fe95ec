// The next runs of the cron being typed, from `GET /schedules/preview` once typing pauses, and
// the server's problem with it (a 422 names the cron or the time zone).
import { useEffect } from 'react';
import { apiErrorInfo } from '@/shared/api/errors';
import { useDebounced } from '@/shared/lib/useDebounced';
import { useNow } from '@/shared/lib/useNow';
import { usePreviewScheduleQuery } from './schedulesApi';
import { fieldOfProblem } from './scheduleForm';

export const PREVIEW_DEBOUNCE_MS = 300;

export interface CronPreview {
  /** The next fire times; undefined while typing, asking, or when there are none to show. */
  runs: string[] | undefined;
  /** Why the server refused the cron or the time zone, on the field it is about. */
  problem: { field: 'cron' | 'timezone'; message: string } | null;
  /** The preview failed for another reason (an older server, the network). */
  unavailable: string | null;
  pending: boolean;
}

export function useCronPreview(cron: string, timezone: string): CronPreview {
  const typedCron = cron.trim().replace(/\s+/g, ' ');
  const typedZone = timezone.trim() || 'UTC';
  const askedCron = useDebounced(typedCron, PREVIEW_DEBOUNCE_MS);
  const askedZone = useDebounced(typedZone, PREVIEW_DEBOUNCE_MS);
  const preview = usePreviewScheduleQuery({ cron: askedCron, timezone: askedZone }, { skip: askedCron === '' });
  const settled = askedCron === typedCron && askedZone === typedZone && !preview.isFetching;
  const runs = settled ? preview.currentData?.next_runs : undefined;

  // Fast schedules (every few seconds) run out of upcoming times quickly: ask again once the
  // first one has passed.
  const now = Math.max(useNow(), Date.now());
  const first = runs?.[0];
  const { refetch } = preview;
  useEffect(() => {
    if (first && Date.parse(first) < now - 1000) refetch();
  }, [first, now, refetch]);

  const info = settled && typedCron !== '' ? apiErrorInfo(preview.error) : null;
  const refused = info && (info.status === 422 || info.status === 400);
  return {
    runs: typedCron === '' ? undefined : runs,
    problem: refused ? { field: fieldOfProblem(info.message) === 'timezone' ? 'timezone' : 'cron', message: info.message } : null,
    unavailable: info && !refused ? info.message : null,
    pending: typedCron !== '' && !settled,
  };
}
