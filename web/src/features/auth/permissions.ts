// What the signed-in user may do, so pages only show buttons that will work.
import type { Role, Task } from '@/shared/api/types';
import { useMeQuery } from './authApi';

export interface Permissions {
  role: Role | null;
  userId: string | null;
  canSubmit: boolean;
  canManageAgents: boolean;
  /** Create or change `command` agents, which run programs on the server's machine. */
  canManageCommandAgents: boolean;
  /** Create, change, pause, run now and delete schedules: the same permission as agents. */
  canManageSchedules: boolean;
  canManageUsers: boolean;
  /** Read the audit log (admins). */
  canReadAudit: boolean;
  /** Create and delete alert rules (everyone may read them). */
  canManageAlerts: boolean;
  /** Cancel or retry this task: admins any, operators their own. */
  canManageTask(task: Pick<Task, 'owner_id'>): boolean;
}

export function permissionsFor(role: Role | null, userId: string | null): Permissions {
  return {
    role,
    userId,
    canSubmit: role === 'admin' || role === 'operator',
    canManageAgents: role === 'admin',
    canManageCommandAgents: role === 'admin',
    canManageSchedules: role === 'admin',
    canManageUsers: role === 'admin',
    canReadAudit: role === 'admin',
    canManageAlerts: role === 'admin',
    canManageTask: (task) => role === 'admin' || (role === 'operator' && !!userId && task.owner_id === userId),
  };
}

export function usePermissions(): Permissions {
  const { data } = useMeQuery();
  return permissionsFor(data?.user.role ?? null, data?.user.id ?? null);
}
