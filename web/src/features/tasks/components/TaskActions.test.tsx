import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore, USER_ID } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import type { Task } from '@/shared/api/types';
import { TaskActions } from './TaskActions';

useMockServer();

function task(over: Partial<Task>): Task {
  return {
    id: '01900000-0000-7000-8000-0000000000aa',
    agent: 'slow',
    status: 'running',
    priority: 0,
    input: {},
    cached: false,
    owner_id: USER_ID,
    run_at: '2026-01-01T00:00:00Z',
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    attempts: [],
    cancel_requested: false,
    seq: 2,
    ...over,
  };
}

describe('TaskActions is role-aware', () => {
  it('shows viewers no buttons', () => {
    renderWithStore(<TaskActions task={task({})} />, { store: signedInStore('viewer') });
    expect(screen.queryByRole('button')).toBeNull();
  });

  it('lets operators cancel their own tasks only', () => {
    const { unmount } = renderWithStore(<TaskActions task={task({})} />, { store: signedInStore('operator') });
    expect(screen.getByRole('button', { name: /cancel task/i })).toBeInTheDocument();
    unmount();
    renderWithStore(<TaskActions task={task({ owner_id: 'someone-else' })} />, { store: signedInStore('operator') });
    expect(screen.queryByRole('button')).toBeNull();
  });

  it('lets admins replay anyone’s dead task, after confirming', async () => {
    const user = userEvent.setup();
    let retried = '';
    server.use(
      http.post('*/api/v1/tasks/:id/retry', ({ params }) => {
        retried = String(params.id);
        return HttpResponse.json(task({ status: 'queued', owner_id: 'x' }));
      }),
    );
    renderWithStore(<TaskActions task={task({ status: 'dead', owner_id: 'someone-else' })} />, { store: signedInStore('admin') });
    expect(screen.queryByRole('button', { name: /cancel/i })).toBeNull();
    await user.click(screen.getByRole('button', { name: /replay task/i }));
    const dialog = screen.getByRole('dialog', { name: 'Replay this dead task?' });
    expect(dialog).toBeInTheDocument();
    expect(retried).toBe('');
    await user.click(screen.getByRole('button', { name: 'Replay task' }));
    expect(await screen.findByRole('button', { name: /replay task 000000aa/i })).toBeInTheDocument();
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(retried).toBe('01900000-0000-7000-8000-0000000000aa');
  });

  it('shows the server’s words when cancelling fails, and Escape closes the dialog', async () => {
    const user = userEvent.setup();
    server.use(http.post('*/api/v1/tasks/:id/cancel', () => HttpResponse.json(errorBody('invalid_state', 'the task already finished'), { status: 409 })));
    renderWithStore(<TaskActions task={task({ status: 'queued' })} />, { store: signedInStore('admin') });
    await user.click(screen.getByRole('button', { name: /cancel task/i }));
    expect(screen.getByRole('button', { name: 'Keep it' })).toHaveFocus();
    await user.click(screen.getByRole('button', { name: 'Cancel task' }));
    expect(await screen.findByText('the task already finished')).toBeInTheDocument();
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
  });
});
