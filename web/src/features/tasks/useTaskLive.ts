// Follows one task while a page shows it: asks the live connection for the task's own
// (resumable) stream from its first event, once the task has loaded. The server replays what
// the task kept (its log, progress and partial output, up to `queue.max_stream_events`), then
// sends live events; the replay fills the stream (taskStream.ts) and leaves the loaded task
// as it is (liveCache.ts: every event is applied once, by seq).
import { useEffect } from 'react';
import { useAppDispatch } from '@/app/hooks';
import { unwatchTask, watchTask } from '@/app/live/liveSlice';
import { useGetTaskStreamQuery } from './tasksApi';

/** Where a task page's subscription starts: the task's first event. */
export const FOLLOW_FROM_START = 0;

export function useTaskLive(taskId: string, loadedSeq: number | undefined) {
  const dispatch = useAppDispatch();
  // Waiting for the task tells replayed events (not newer than it) from news.
  const ready = loadedSeq !== undefined;
  useEffect(() => {
    if (!ready) return;
    dispatch(watchTask({ taskId, since: FOLLOW_FROM_START }));
    return () => {
      dispatch(unwatchTask({ taskId }));
    };
    // Subscribe once per task: a reconnect resumes after the last sequence number seen.
  }, [dispatch, taskId, ready]);
  return useGetTaskStreamQuery(taskId).data;
}
