import { useCallback, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { useGetCapabilitiesQuery } from '@/app/capabilities';
import { usePermissions } from '@/features/auth/permissions';
import { matchesLocally } from '../localSearch';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';
import { TaskFilters, filtersFromParams, paramsFromFilters, type TaskFilterValues } from '../components/TaskFilters';
import { TaskTable } from '../components/TaskTable';
import { useListTasksQuery } from '../tasksApi';

const PAGE_SIZE = 50;

export function TasksPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => filtersFromParams(params), [params]);
  const filterKey = params.toString();
  const [pages, setPages] = useState<{ key: string; cursors: string[] }>({ key: filterKey, cursors: [] });
  const cursors = pages.key === filterKey ? pages.cursors : [];
  const cursor = cursors.at(-1);
  const capabilities = useGetCapabilitiesQuery();
  const searchAvailable = capabilities.data?.taskSearch ?? false;
  const can = usePermissions();

  const { data, error, isLoading, isFetching, refetch } = useListTasksQuery({
    agent: filters.agent,
    status: filters.status,
    createdAfter: filters.createdAfter,
    createdBefore: filters.createdBefore,
    q: searchAvailable ? filters.q : undefined,
    cursor,
    limit: PAGE_SIZE,
  });

  const setFilters = useCallback((f: TaskFilterValues) => setParams(paramsFromFilters(f), { replace: true }), [setParams]);

  const items = useMemo(() => {
    const all = data?.items ?? [];
    return !searchAvailable && filters.q ? all.filter((t) => matchesLocally(t, filters.q!)) : all;
  }, [data, searchAvailable, filters.q]);

  return (
    <>
      <PageHeader
        title="Tasks"
        description="Every task you may see, newest first. Statuses update live."
        actions={
          can.canSubmit && (
            <Link to="/tasks/new" className="btn btn-primary">
              Submit task
            </Link>
          )
        }
      />
      <TaskFilters value={filters} onChange={setFilters} searchAvailable={searchAvailable} />
      {error ? (
        <ErrorAlert error={error} title="Could not load tasks" onRetry={refetch} />
      ) : isLoading ? (
        <Loading label="Loading tasks…" />
      ) : items.length === 0 ? (
        <EmptyState title={filterKey || cursor ? 'No tasks match these filters.' : 'No tasks yet.'}>
          {can.canSubmit && !filterKey && <Link to="/tasks/new">Submit the first one</Link>}
        </EmptyState>
      ) : (
        <TaskTable tasks={items} caption="Tasks" />
      )}
      <nav className="pager" aria-label="Pages">
        <button type="button" className="btn btn-small" disabled={cursors.length === 0} onClick={() => setPages({ key: filterKey, cursors: [] })}>
          Newest
        </button>
        <button type="button" className="btn btn-small" disabled={cursors.length === 0} onClick={() => setPages({ key: filterKey, cursors: cursors.slice(0, -1) })}>
          ← Newer
        </button>
        <span className="muted small" aria-live="polite">
          Page {cursors.length + 1}
          {isFetching && !isLoading ? ' · refreshing…' : ''}
        </span>
        <button
          type="button"
          className="btn btn-small"
          disabled={!data?.next_cursor}
          onClick={() => data?.next_cursor && setPages({ key: filterKey, cursors: [...cursors, data.next_cursor] })}
        >
          Older →
        </button>
      </nav>
    </>
  );
}
