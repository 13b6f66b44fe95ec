import type { Task } from '@/shared/api/types';

/** Without server-side search, filter the loaded tasks (the page says so). */
export function matchesLocally(task: Task, q: string): boolean {
  const needle = q.toLowerCase();
  const hay = [task.id, task.agent, task.status, task.error?.message ?? '', task.error?.code ?? '', JSON.stringify(task.input ?? ''), JSON.stringify(task.output ?? '')];
  return hay.some((h) => h.toLowerCase().includes(needle));
}
