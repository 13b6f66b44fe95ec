// Follows one task live while a page shows it: asks the live connection for the task's own
// (resumable) stream, starting after the sequence number already loaded.
import { useEffect } from 'react';
import { useAppDispatch } from '@/app/hooks';
import { unwatchTask, watchTask } from '@/app/live/liveSlice';
import { useGetTaskStreamQuery } from './tasksApi';

export function useTaskLive(taskId: string, loadedSeq: number | undefined) {
  const dispatch = useAppDispatch();
  const ready = loadedSeq !== undefined;
  useEffect(() => {
    if (!ready) return;
    dispatch(watchTask({ taskId, since: loadedSeq }));
    return () => {
      dispatch(unwatchTask({ taskId }));
    };
    // Subscribe once per task: later sequence numbers arrive through the subscription itself.
  }, [dispatch, taskId, ready]);
  return useGetTaskStreamQuery(taskId).data;
}
