import { act, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import type { Task } from '@/shared/api/types';
import { server, useMockServer } from '@/test/msw';
import { liveStore, renderWithStore, USER_ID } from '@/test/utils';
import { ChildTasks } from './ChildTasks';

useMockServer();

const PARENT = '01900000-0000-7000-8000-0000000000a0';
const C1 = '01900000-0000-7000-8000-0000000000c1';
const C2 = '01900000-0000-7000-8000-0000000000c2';
const G1 = '01900000-0000-7000-8000-0000000000e1';

function task(id: string, over: Partial<Task> = {}): Task {
  return {
    id,
    agent: 'conf-echo',
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

const parent = task(PARENT, { agent: 'conf-parent', status: 'waiting', wait: { kind: 'children', name: 'join:#1', children: [C1, C2] } });

/** Children by parent id; records which lists were asked for. */
function childrenServer(pages: Record<string, { items: Task[]; next_cursor?: string | null }>) {
  const asked: string[] = [];
  server.use(
    http.get('*/api/v1/tasks', ({ request }) => {
      const params = new URL(request.url).searchParams;
      const parentId = params.get('parent_id') ?? '';
      asked.push(`${parentId}:${params.get('limit')}`);
      return HttpResponse.json(pages[parentId] ?? { items: [], next_cursor: null });
    }),
  );
  return asked;
}

describe('ChildTasks', () => {
  it('shows children as a tree: links, statuses, the ones awaited, and grandchildren when unfolded', async () => {
    const asked = childrenServer({
      [PARENT]: { items: [task(C1), task(C2, { status: 'waiting', wait: { kind: 'signal', name: 'signal:go', signal: 'go' } })], next_cursor: 'more' },
      [C1]: { items: [task(G1, { status: 'failed', error: { class: 'permanent', code: 'boom', message: 'it broke' } })], next_cursor: null },
    });
    const user = userEvent.setup();
    renderWithStore(<ChildTasks task={parent} />);

    const tree = await screen.findByRole('list', { name: 'Child tasks' });
    // The first 100, and a sign that there are more.
    expect(asked).toEqual([`${PARENT}:100`]);
    expect(screen.getByRole('heading', { name: 'Child tasks (2+)' })).toBeInTheDocument();
    expect(screen.getByText('Showing the first 100; there are more.')).toBeInTheDocument();
    expect(screen.getByText('1 running')).toBeInTheDocument();
    expect(screen.getByText('1 waiting')).toBeInTheDocument();

    const [first, second] = within(tree).getAllByRole('listitem');
    expect(within(first!).getByRole('link', { name: '000000c1' })).toHaveAttribute('href', `/tasks/${C1}`);
    expect(within(first!).getByText('Running')).toBeInTheDocument();
    expect(within(first!).getByText('awaited')).toBeInTheDocument();
    // A waiting child says what it waits for in its badge's tooltip.
    expect(within(second!).getByText('Waiting')).toHaveAttribute('title', 'Waiting for signal go');

    // Unfolding fetches that child's own children.
    const toggle = within(first!).getByRole('button', { name: 'Show the child tasks of 000000c1' });
    expect(toggle).toHaveAttribute('aria-expanded', 'false');
    await user.click(toggle);
    const nested = await screen.findByRole('list', { name: 'Child tasks of 000000c1' });
    expect(toggle).toHaveAttribute('aria-expanded', 'true');
    expect(document.getElementById(toggle.getAttribute('aria-controls')!)).toContainElement(nested);
    expect(asked).toContain(`${C1}:100`);
    expect(within(nested).getByRole('link', { name: '000000e1' })).toHaveAttribute('href', `/tasks/${G1}`);
    expect(within(nested).getByText('Failed')).toBeInTheDocument();
    expect(within(nested).getByText('it broke')).toBeInTheDocument();
    expect(within(nested).queryByText('awaited')).toBeNull();

    await user.click(within(second!).getByRole('button', { name: 'Show the child tasks of 000000c2' }));
    expect(await within(second!).findByText('No child tasks.')).toBeInTheDocument();
  });

  it('follows the children’s statuses live', async () => {
    childrenServer({ [PARENT]: { items: [task(C1), task(C2)], next_cursor: null } });
    const { store, emit } = liveStore();
    renderWithStore(<ChildTasks task={parent} />, { store });
    const tree = await screen.findByRole('list', { name: 'Child tasks' });
    expect(screen.getByRole('heading', { name: 'Child tasks (2)' })).toBeInTheDocument();

    act(() => emit({ task_id: C1, seq: 3, kind: 'result', status: 'succeeded', attempt: 1, output: { ok: true }, cached: false }));
    act(() => emit({ task_id: C2, seq: 3, kind: 'waiting', attempt: 1, wait: { kind: 'sleep', name: 'nap', until: '2026-01-01T00:10:00Z' } }));
    const [first, second] = within(tree).getAllByRole('listitem');
    expect(await within(first!).findByText('Succeeded')).toBeInTheDocument();
    expect(await within(second!).findByText('Waiting')).toHaveAttribute('title', expect.stringMatching(/^Sleeping until /));
    expect(screen.getByText('1 succeeded')).toBeInTheDocument();

    act(() => emit({ task_id: C2, seq: 4, kind: 'resumed', reason: 'time' }));
    expect(await within(second!).findByText('Queued')).not.toHaveAttribute('title');
  });
});
