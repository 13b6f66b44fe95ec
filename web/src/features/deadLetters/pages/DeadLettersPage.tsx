// Dead letters: tasks out of attempts with no fallback. Replaying sends one back to the queue.
import { useCallback, useMemo, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useGetCapabilitiesQuery } from '@/app/capabilities';
import { usePermissions } from '@/features/auth/permissions';
import { TaskFilters, filtersFromParams, paramsFromFilters, type TaskFilterValues } from '@/features/tasks/components/TaskFilters';
import { TaskActions } from '@/features/tasks/components/TaskActions';
import { TaskTable } from '@/features/tasks/components/TaskTable';
import { useListTasksQuery, useRetryTaskMutation } from '@/features/tasks/tasksApi';
import { matchesLocally } from '@/features/tasks/localSearch';
import { ConfirmButton } from '@/shared/ui/ConfirmButton';
import { EmptyState, ErrorAlert, Loading } from '@/shared/ui/Feedback';
import { PageHeader } from '@/shared/ui/PageHeader';

export function DeadLettersPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => filtersFromParams(params), [params]);
  const [cursors, setCursors] = useState<string[]>([]);
  const capabilities = useGetCapabilitiesQuery();
  const searchAvailable = capabilities.data?.taskSearch ?? false;
  const can = usePermissions();
  const [retry] = useRetryTaskMutation();
  const { data, error, isLoading, refetch } = useListTasksQuery({
    status: ['dead'],
    agent: filters.agent,
    createdAfter: filters.createdAfter,
    createdBefore: filters.createdBefore,
    q: searchAvailable ? filters.q : undefined,
    cursor: cursors.at(-1),
    limit: 50,
  });
  const setFilters = useCallback(
    (f: TaskFilterValues) => {
      setCursors([]);
      setParams(paramsFromFilters({ ...f, status: [] }), { replace: true });
    },
    [setParams],
  );
  const items = useMemo(() => {
    const all = data?.items ?? [];
    return !searchAvailable && filters.q ? all.filter((t) => matchesLocally(t, filters.q!)) : all;
  }, [data, searchAvailable, filters.q]);
  const replayable = items.filter((t) => can.canManageTask(t));

  return (
    <>
      <PageHeader
        title="Dead letters"
        description="Tasks that ran out of attempts (or failed permanently) and had no fallback. Replay sends them back to the queue."
        actions={
          replayable.length > 1 && (
            <ConfirmButton
              label={`Replay all ${replayable.length} shown`}
              title={`Replay ${replayable.length} dead tasks?`}
              message="Each goes back to the queue with its input and a fresh set of attempts."
              confirmLabel="Replay them"
              onConfirm={async () => {
                for (const t of replayable) await retry(t.id).unwrap();
              }}
            />
          )
        }
      />
      <TaskFilters value={filters} onChange={setFilters} searchAvailable={searchAvailable} hideStatus />
      {error ? (
        <ErrorAlert error={error} title="Could not load dead letters" onRetry={refetch} />
      ) : isLoading ? (
        <Loading label="Loading dead letters…" />
      ) : items.length === 0 ? (
        <EmptyState title="No dead letters.">Tasks that fail for good without a fallback show up here.</EmptyState>
      ) : (
        <TaskTable tasks={items} caption="Dead tasks" showError actions={(t) => <TaskActions task={t} compact />} />
      )}
      <nav className="pager" aria-label="Pages">
        <button type="button" className="btn btn-small" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Newer
        </button>
        <button type="button" className="btn btn-small" disabled={!data?.next_cursor} onClick={() => data?.next_cursor && setCursors([...cursors, data.next_cursor])}>
          Older →
        </button>
      </nav>
    </>
  );
}
