// Routes. Every page is its own lazily loaded chunk.
import { createBrowserRouter, type RouteObject } from 'react-router';
import { AppShell } from './layout/AppShell';
import { RouteError } from './layout/RouteError';
import { Loading } from '@/shared/ui/Feedback';
import { NotFoundPage } from './layout/NotFoundPage';

export const routes: RouteObject[] = [
  {
    path: '/login',
    lazy: () => import('@/features/auth/pages/LoginPage').then((m) => ({ Component: m.LoginPage })),
    ErrorBoundary: RouteError,
    HydrateFallback: () => <Loading />,
  },
  {
    path: '/',
    Component: AppShell,
    ErrorBoundary: RouteError,
    HydrateFallback: () => <Loading />,
    children: [
      { index: true, lazy: () => import('@/features/overview/pages/OverviewPage').then((m) => ({ Component: m.OverviewPage })) },
      { path: 'tasks', lazy: () => import('@/features/tasks/pages/TasksPage').then((m) => ({ Component: m.TasksPage })) },
      { path: 'tasks/new', lazy: () => import('@/features/tasks/pages/SubmitTaskPage').then((m) => ({ Component: m.SubmitTaskPage })) },
      { path: 'tasks/:id', lazy: () => import('@/features/tasks/pages/TaskDetailPage').then((m) => ({ Component: m.TaskDetailPage })) },
      { path: 'dead-letters', lazy: () => import('@/features/deadLetters/pages/DeadLettersPage').then((m) => ({ Component: m.DeadLettersPage })) },
      { path: 'agents', lazy: () => import('@/features/agents/pages/AgentsPage').then((m) => ({ Component: m.AgentsPage })) },
      { path: 'agents/new', lazy: () => import('@/features/agents/pages/AgentEditPage').then((m) => ({ Component: m.AgentEditPage })) },
      { path: 'agents/:name', lazy: () => import('@/features/agents/pages/AgentEditPage').then((m) => ({ Component: m.AgentEditPage })) },
      { path: 'schedules', lazy: () => import('@/features/schedules/pages/SchedulesPage').then((m) => ({ Component: m.SchedulesPage })) },
      { path: 'schedules/new', lazy: () => import('@/features/schedules/pages/ScheduleEditPage').then((m) => ({ Component: m.ScheduleEditPage })) },
      { path: 'schedules/:name', lazy: () => import('@/features/schedules/pages/ScheduleEditPage').then((m) => ({ Component: m.ScheduleEditPage })) },
      { path: 'reports', lazy: () => import('@/features/reports/pages/ReportsPage').then((m) => ({ Component: m.ReportsPage })) },
      { path: 'workers', lazy: () => import('@/features/workers/pages/WorkersPage').then((m) => ({ Component: m.WorkersPage })) },
      { path: 'alerts', lazy: () => import('@/features/alerts/pages/AlertsPage').then((m) => ({ Component: m.AlertsPage })) },
      { path: 'api-keys', lazy: () => import('@/features/apiKeys/pages/ApiKeysPage').then((m) => ({ Component: m.ApiKeysPage })) },
      { path: 'users', lazy: () => import('@/features/users/pages/UsersPage').then((m) => ({ Component: m.UsersPage })) },
      { path: 'audit', lazy: () => import('@/features/audit/pages/AuditPage').then((m) => ({ Component: m.AuditPage })) },
      { path: '*', Component: NotFoundPage },
    ],
  },
];

export function createAppRouter() {
  return createBrowserRouter(routes);
}
