// A fire time as a schedule reads: "in 2 minutes · Sat 6 Dec 02:00" (the clock in the
// schedule's time zone; the tooltip in the browser's).
import { formatDateTime, formatInWords, formatWallClock } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';

export function RunTime({ iso, timeZone }: { iso: string | null | undefined; timeZone: string }) {
  const now = Math.max(useNow(), Date.now());
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatDateTime(iso)} className="run-time">
      <span className="run-time-words">{formatInWords(iso, now)}</span>
      <span className="muted"> · {formatWallClock(iso, timeZone, now)}</span>
    </time>
  );
}
