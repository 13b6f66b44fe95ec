import { screen } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore, USER_ID } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import { TaskDetailPage } from './TaskDetailPage';

useMockServer();

const ID = '01900000-0000-7000-8000-0000000000cc';

const task = {
  id: ID,
  agent: 'flaky',
  status: 'succeeded',
  priority: 3,
  input: { times: 1 },
  output: { attempts: 2 },
  error: null,
  cached: false,
  owner_id: USER_ID,
  run_at: '2026-01-01T00:00:00Z',
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:02Z',
  started_at: '2026-01-01T00:00:00.100Z',
  finished_at: '2026-01-01T00:00:02Z',
  attempts: [
    { number: 1, status: 'failed', started_at: '2026-01-01T00:00:00.100Z', finished_at: '2026-01-01T00:00:00.200Z', worker: 'builtin', error: { class: 'retryable', code: 'simulated_failure', message: 'simulated retryable failure 1 of 1' } },
    { number: 2, status: 'succeeded', started_at: '2026-01-01T00:00:01Z', finished_at: '2026-01-01T00:00:02Z', worker: 'builtin' },
  ],
  cancel_requested: false,
  seq: 6,
};

describe('TaskDetailPage', () => {
  it('shows input, output, the attempts timeline, the log and the actions that apply', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(task)),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json({ items: [{ seq: 3, attempt: 1, at: '2026-01-01T00:00:00.150Z', level: 'warn', message: 'about to fail' }] })),
      http.get('*/api/v1/tasks', () => HttpResponse.json({ items: [], next_cursor: null })),
    );
    renderWithStore(<TaskDetailPage />, { store: signedInStore('operator'), path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByTestId('task-status')).toHaveTextContent('Succeeded');
    expect(screen.getByRole('region', { name: 'Input' })).toHaveTextContent('"times": 1');
    expect(screen.getByRole('region', { name: 'Output' })).toHaveTextContent('"attempts": 2');
    const attempts = screen.getByRole('list', { name: 'Attempts' });
    expect(attempts).toHaveTextContent('Attempt 1');
    expect(attempts).toHaveTextContent('simulated retryable failure 1 of 1');
    expect(attempts).toHaveTextContent('Attempt 2');
    expect(await screen.findByRole('log', { name: 'Task log' })).toHaveTextContent('about to fail');
    expect(screen.getByText('you')).toBeInTheDocument();
    // Succeeded: nothing to cancel, nothing to retry.
    expect(screen.queryByRole('button', { name: /cancel task|retry task/i })).toBeNull();
  });

  it('says so when the task does not exist', async () => {
    server.use(
      http.get(`*/api/v1/tasks/${ID}`, () => HttpResponse.json(errorBody('task_not_found', 'no task with that id'), { status: 404 })),
      http.get(`*/api/v1/tasks/${ID}/logs`, () => HttpResponse.json(errorBody('task_not_found', 'no task with that id'), { status: 404 })),
    );
    renderWithStore(<TaskDetailPage />, { path: '/tasks/:id', route: `/tasks/${ID}` });
    expect(await screen.findByRole('alert')).toHaveTextContent('No such task: no task with that id');
  });
});
