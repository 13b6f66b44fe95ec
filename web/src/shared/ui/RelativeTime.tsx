import { formatDateTime, formatRelative } from '@/shared/lib/format';
import { useNow } from '@/shared/lib/useNow';

export function RelativeTime({ iso }: { iso: string | null | undefined }) {
  const now = useNow();
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatDateTime(iso)}>
      {formatRelative(iso, Math.max(now, Date.now() - 10_000))}
    </time>
  );
}
