import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore } from '@/test/utils';
import { errorBody, server, useMockServer } from '@/test/msw';
import { schedule, TASK_A, TASK_B } from '@/test/schedules';
import type { Schedule } from '@/shared/api/types';
import { formatWallClock } from '@/shared/lib/format';
import { SchedulesPage } from './SchedulesPage';

useMockServer();

function mockSchedules(initial: Schedule[] = [schedule('nightly')]) {
  let schedules = [...initial];
  const puts: { name: string; body: unknown }[] = [];
  const triggered: string[] = [];
  const deleted: string[] = [];
  server.use(
    http.get('*/api/v1/schedules', () => HttpResponse.json({ items: schedules })),
    http.put('*/api/v1/schedules/:name', async ({ params, request }) => {
      const body = (await request.json()) as Partial<Schedule>;
      puts.push({ name: String(params.name), body });
      schedules = schedules.map((s) => (s.name === params.name ? { ...s, ...body, next_runs: body.paused ? [] : s.next_runs, updated_at: new Date().toISOString() } : s));
      return HttpResponse.json(schedules.find((s) => s.name === params.name));
    }),
    http.post('*/api/v1/schedules/:name/trigger', ({ params }) => {
      triggered.push(String(params.name));
      return HttpResponse.json({ task_id: TASK_B, schedule: params.name, scheduled_for: new Date().toISOString() }, { status: 201 });
    }),
    http.delete('*/api/v1/schedules/:name', ({ params }) => {
      deleted.push(String(params.name));
      schedules = schedules.filter((s) => s.name !== params.name);
      return new HttpResponse(null, { status: 204 });
    }),
  );
  return { puts, triggered, deleted };
}

describe('SchedulesPage', () => {
  it('lists schedules with their agent, cron, next run in words and last run', async () => {
    const nightly = schedule('nightly', {
      last_runs: [{ task_id: TASK_A, scheduled_for: '2026-01-01T01:00:00Z', fired_at: new Date(Date.now() - 90_000).toISOString(), status: 'succeeded' }],
    });
    const paused = schedule('reports.weekly', { agent: 'sleep', cron: '0 9 * * 1-5', timezone: 'UTC', paused: true, next_runs: [] });
    mockSchedules([nightly, paused]);
    renderWithStore(<SchedulesPage />);
    const table = await screen.findByRole('table', { name: 'Schedules' });

    const row = within(table).getByText('nightly').closest('tr')!;
    expect(within(row).getByRole('link', { name: 'nightly' })).toHaveAttribute('href', '/schedules/nightly');
    expect(within(row).getByRole('link', { name: 'echo' })).toHaveAttribute('href', '/agents/echo');
    expect(row).toHaveTextContent('0 2 * * *');
    expect(row).toHaveTextContent('Europe/Berlin');
    expect(row).toHaveTextContent(`in 2 minutes · ${formatWallClock(nightly.next_runs[0]!, 'Europe/Berlin')}`);
    const last = within(row).getByRole('link', { name: `Task ${TASK_A}: succeeded` });
    expect(last).toHaveAttribute('href', `/tasks/${TASK_A}`);
    expect(within(last).getByText('Succeeded')).toBeInTheDocument();
    expect(row).toHaveTextContent('1 min ago');
    expect(within(row).queryByText('paused')).toBeNull();

    const weekly = within(table).getByText('reports.weekly').closest('tr')!;
    expect(within(weekly).getAllByText('paused')).toHaveLength(2);
    expect(weekly).toHaveTextContent('never');
    expect(within(weekly).getByRole('button', { name: 'Resume reports.weekly' })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'New schedule' })).toHaveAttribute('href', '/schedules/new');
  });

  it('pauses and resumes by sending the schedule back with paused flipped', async () => {
    const u = userEvent.setup();
    const { puts } = mockSchedules();
    renderWithStore(<SchedulesPage />);
    await u.click(await screen.findByRole('button', { name: 'Pause nightly' }));
    const row = screen.getByText('nightly').closest('tr')!;
    expect(await within(row).findByRole('button', { name: 'Resume nightly' })).toBeInTheDocument();
    expect(puts).toEqual([
      { name: 'nightly', body: { agent: 'echo', input: { report: 'daily' }, cron: '0 2 * * *', timezone: 'Europe/Berlin', overlap: 'skip', catchup: 'latest', paused: true } },
    ]);
    expect(within(row).getAllByText('paused')).toHaveLength(2);

    await u.click(within(row).getByRole('button', { name: 'Resume nightly' }));
    expect(await within(row).findByRole('button', { name: 'Pause nightly' })).toBeInTheDocument();
    expect(puts.at(-1)?.body).toMatchObject({ paused: false });
  });

  it('runs a schedule now and links to the task it started', async () => {
    const u = userEvent.setup();
    const { triggered } = mockSchedules();
    renderWithStore(<SchedulesPage />);
    await u.click(await screen.findByRole('button', { name: 'Run nightly now' }));
    const started = await screen.findByRole('status');
    expect(started).toHaveTextContent('Run started: 000000b2');
    expect(within(started).getByRole('link', { name: `Task ${TASK_B}` })).toHaveAttribute('href', `/tasks/${TASK_B}`);
    expect(triggered).toEqual(['nightly']);
  });

  it('deletes a schedule only after confirmation', async () => {
    const u = userEvent.setup();
    const { deleted } = mockSchedules();
    renderWithStore(<SchedulesPage />);
    await u.click(await screen.findByRole('button', { name: 'Delete schedule nightly' }));
    await u.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Keep it' }));
    expect(deleted).toEqual([]);
    await u.click(screen.getByRole('button', { name: 'Delete schedule nightly' }));
    await u.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete schedule' }));
    expect(await screen.findByText('No schedules yet.')).toBeInTheDocument();
    expect(deleted).toEqual(['nightly']);
  });

  it('shows why an action failed, on the row', async () => {
    const u = userEvent.setup();
    mockSchedules();
    server.use(http.post('*/api/v1/schedules/:name/trigger', () => HttpResponse.json(errorBody('agent_not_found', 'agent echo does not exist'), { status: 404 })));
    renderWithStore(<SchedulesPage />);
    await u.click(await screen.findByRole('button', { name: 'Run nightly now' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Not started: agent echo does not exist');
    expect(screen.getByText('nightly').closest('tr')).toContainElement(alert);
  });

  it.each(['viewer', 'operator'] as const)('is read-only for a %s', async (role) => {
    mockSchedules();
    renderWithStore(<SchedulesPage />, { store: signedInStore(role) });
    await screen.findByRole('table', { name: 'Schedules' });
    expect(screen.queryByRole('button', { name: /Pause|Run|Delete/ })).toBeNull();
    expect(screen.queryByRole('link', { name: 'New schedule' })).toBeNull();
    expect(screen.getByText(/Only admins create, pause or delete schedules/)).toBeInTheDocument();
  });

  it('shows an error with a retry when the schedules cannot be loaded', async () => {
    server.use(http.get('*/api/v1/schedules', () => HttpResponse.json(errorBody('internal', 'boom'), { status: 500 })));
    renderWithStore(<SchedulesPage />);
    expect(await screen.findByText(/Could not load schedules/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });

  it('says so when the server has no schedules', async () => {
    server.use(http.get('*/api/v1/schedules', () => HttpResponse.json(errorBody('route_not_found', 'no such endpoint'), { status: 404 })));
    renderWithStore(<SchedulesPage />, { store: signedInStore('viewer') });
    expect(await screen.findByText('Scheduling is not available on this server.')).toBeInTheDocument();
  });
});
