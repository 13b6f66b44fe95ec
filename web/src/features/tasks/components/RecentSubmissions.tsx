// Tasks submitted from this tab, with their live status.
import { Link } from 'react-router';
import { useAppSelector } from '@/app/hooks';
import { shortId } from '@/shared/lib/format';
import { RelativeTime } from '@/shared/ui/RelativeTime';
import { StatusBadge } from '@/shared/ui/StatusBadge';
import { useGetTaskQuery } from '../tasksApi';

function Row({ id }: { id: string }) {
  const { data } = useGetTaskQuery(id);
  if (!data) return null;
  return (
    <li className="recent" data-task-id={id}>
      <Link to={`/tasks/${id}`} className="mono">
        {shortId(id)}
      </Link>
      <span>{data.agent}</span>
      <StatusBadge status={data.status} />
      <RelativeTime iso={data.created_at} />
    </li>
  );
}

export function RecentSubmissions() {
  const ids = useAppSelector((s) => s.tasksUi.recentlySubmitted);
  if (ids.length === 0) return null;
  return (
    <section className="card" aria-labelledby="recent-title">
      <h2 id="recent-title">Submitted from here</h2>
      <ul className="recent-list" data-testid="recent-submissions">
        {ids.map((id) => (
          <Row key={id} id={id} />
        ))}
      </ul>
    </section>
  );
}
