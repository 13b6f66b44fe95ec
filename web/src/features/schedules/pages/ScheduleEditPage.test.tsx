import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore, USER_ID } from '@/test/utils';
import { errorBody, server, useMockServer } from '@/test/msw';
import { runsFromNow, schedule, TASK_A, TASK_B } from '@/test/schedules';
import type { Agent, Schedule } from '@/shared/api/types';
import { formatWallClock } from '@/shared/lib/format';
import { ScheduleEditPage } from './ScheduleEditPage';

useMockServer();

function agent(name: string, input_schema: Record<string, unknown> | null = {}): Agent {
  return {
    name,
    kind: 'echo',
    version: '1',
    input_schema,
    config: {},
    retry: { max_attempts: 5, base_ms: 200, cap_ms: 30000 },
    timeout_ms: 60000,
    priority: 0,
    builtin: true,
    secrets: [],
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
}

const AGENTS = [agent('echo'), agent('sleep', { type: 'object', properties: { ms: { type: 'integer', minimum: 0, default: 1000 } }, required: ['ms'] })];

/** The preview answers every cron but "bad" with runs two seconds apart, and counts what it was asked. */
function mockForm() {
  const previews: { cron: string | null; timezone: string | null }[] = [];
  const posted: unknown[] = [];
  server.use(
    http.get('*/api/v1/agents', () => HttpResponse.json({ items: AGENTS })),
    http.get('*/api/v1/schedules/preview', ({ request }) => {
      const url = new URL(request.url);
      const cron = url.searchParams.get('cron');
      const timezone = url.searchParams.get('timezone');
      previews.push({ cron, timezone });
      if (cron?.includes('bad')) return HttpResponse.json(errorBody('invalid_schedule', 'cron must have 5 fields or 6 with seconds first, got "bad cron"'), { status: 422 });
      if (timezone === 'Mars/Olympus') return HttpResponse.json(errorBody('invalid_schedule', 'timezone "Mars/Olympus" is not an IANA time zone name'), { status: 422 });
      return HttpResponse.json({ next_runs: runsFromNow(62, 2) });
    }),
    http.post('*/api/v1/schedules', async ({ request }) => {
      const body = (await request.json()) as Record<string, unknown>;
      posted.push(body);
      if (body.name === 'taken') return HttpResponse.json(errorBody('conflict', 'a schedule named taken already exists'), { status: 409 });
      if (body.timezone === 'Nowhere/Town') return HttpResponse.json(errorBody('invalid_schedule', 'unknown timezone Nowhere/Town'), { status: 422 });
      return HttpResponse.json(schedule(String(body.name), body as Partial<Schedule>), { status: 201 });
    }),
  );
  return { previews, posted };
}

describe('ScheduleEditPage: a new schedule', () => {
  it('offers presets, previews the next five runs once typing pauses, and creates the schedule', async () => {
    const u = userEvent.setup();
    const { previews, posted } = mockForm();
    const { router } = renderWithStore(<ScheduleEditPage />, { path: '/schedules/new', route: '/schedules/new' });
    await u.type(screen.getByLabelText(/^Name/), 'every-two');
    await u.selectOptions(await screen.findByLabelText(/^Agent/), 'sleep');
    // The agent's input form, with its defaults.
    expect(await screen.findByLabelText(/^ms/)).toHaveValue(1000);
    expect(screen.getByLabelText('Time zone')).toHaveValue('UTC');

    // Typed by hand: one preview for what was typed, not one per key.
    const cron = screen.getByLabelText(/^Cron/);
    await u.type(cron, '*/5 * * * *');
    const runs = await screen.findByRole('list', { name: 'Next runs' });
    expect(within(runs).getAllByRole('listitem')).toHaveLength(5);
    expect(previews).toEqual([{ cron: '*/5 * * * *', timezone: 'UTC' }]);

    await u.click(screen.getByRole('button', { name: 'Every 2 seconds' }));
    expect(cron).toHaveValue('*/2 * * * * *');
    expect(screen.getByRole('button', { name: 'Every 2 seconds' })).toHaveAttribute('aria-pressed', 'true');
    await waitFor(() => expect(previews.at(-1)).toEqual({ cron: '*/2 * * * * *', timezone: 'UTC' }));
    const items = within(await screen.findByRole('list', { name: 'Next runs' })).getAllByRole('listitem');
    expect(items).toHaveLength(5);
    expect(items[0]).toHaveTextContent(/^in 1 minute · \w{3} \d{1,2} \w{3} \d\d:\d\d(:\d\d)?$/);
    expect(items[1]).toHaveTextContent(/^in 1 minute · /);

    await u.selectOptions(screen.getByLabelText('When the previous run is still going'), 'skip');
    await u.selectOptions(screen.getByLabelText('Missed runs'), 'latest');
    await u.click(screen.getByRole('button', { name: 'Create schedule' }));
    await waitFor(() => expect(router.state.location.pathname).toBe('/schedules/every-two'));
    expect(posted).toEqual([{ name: 'every-two', agent: 'sleep', input: { ms: 1000 }, cron: '*/2 * * * * *', timezone: 'UTC', overlap: 'skip', catchup: 'latest', paused: false }]);
  });

  it('shows a cron the server cannot read under the field, and a bad time zone', async () => {
    const u = userEvent.setup();
    mockForm();
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/new', route: '/schedules/new' });
    const cron = screen.getByLabelText(/^Cron/);
    await u.type(cron, 'bad cron');
    expect(await screen.findByText('cron must have 5 fields or 6 with seconds first, got "bad cron"')).toBeInTheDocument();
    expect(cron).toHaveAttribute('aria-invalid', 'true');
    expect(screen.queryByRole('list', { name: 'Next runs' })).toBeNull();

    await u.clear(cron);
    await u.type(cron, '0 9 * * 1-5');
    expect(await screen.findByRole('list', { name: 'Next runs' })).toBeInTheDocument();
    expect(cron).not.toHaveAttribute('aria-invalid');

    const zone = screen.getByLabelText('Time zone');
    await u.clear(zone);
    await u.type(zone, 'Mars/Olympus');
    // About the time zone: under that field, not the cron.
    expect(await screen.findByText('timezone "Mars/Olympus" is not an IANA time zone name')).toBeInTheDocument();
    expect(zone).toHaveAttribute('aria-invalid', 'true');
    expect(zone).toHaveAccessibleDescription(/is not an IANA time zone name/);
    expect(cron).not.toHaveAttribute('aria-invalid');
  });

  it('checks what it can before sending, and puts the server’s refusals on their fields', async () => {
    const u = userEvent.setup();
    const { posted } = mockForm();
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/new', route: '/schedules/new' });
    await u.click(screen.getByRole('button', { name: 'Create schedule' }));
    expect(await screen.findByText('Fix the marked fields first.')).toBeInTheDocument();
    expect(screen.getByLabelText(/^Name/)).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText(/^Agent/)).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText(/^Cron/)).toHaveAttribute('aria-invalid', 'true');
    expect(posted).toEqual([]);

    await u.type(screen.getByLabelText(/^Name/), 'taken');
    await u.selectOptions(screen.getByLabelText(/^Agent/), 'echo');
    await u.click(screen.getByRole('button', { name: 'Daily at 02:00' }));
    await u.click(screen.getByRole('button', { name: 'Create schedule' }));
    expect(await screen.findByText('a schedule named taken already exists')).toBeInTheDocument();
    expect(screen.getByLabelText(/^Name/)).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByText('Not saved: check the fields marked above.')).toBeInTheDocument();

    await u.clear(screen.getByLabelText(/^Name/));
    await u.type(screen.getByLabelText(/^Name/), 'nightly');
    expect(screen.queryByText('a schedule named taken already exists')).toBeNull();
    const zone = screen.getByLabelText('Time zone');
    await u.clear(zone);
    await u.type(zone, 'Nowhere/Town');
    await u.click(screen.getByRole('button', { name: 'Create schedule' }));
    expect(await screen.findByText('unknown timezone Nowhere/Town')).toBeInTheDocument();
    expect(zone).toHaveAttribute('aria-invalid', 'true');
    expect(posted).toHaveLength(2);
  });

  it('shows other server errors as a box', async () => {
    const u = userEvent.setup();
    mockForm();
    server.use(http.post('*/api/v1/schedules', () => HttpResponse.json(errorBody('forbidden', 'you may not manage agents'), { status: 403 })));
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/new', route: '/schedules/new' });
    await u.type(screen.getByLabelText(/^Name/), 'nightly');
    await u.selectOptions(await screen.findByLabelText(/^Agent/), 'echo');
    await u.type(screen.getByLabelText(/^Cron/), '0 2 * * *');
    await u.click(screen.getByRole('button', { name: 'Create schedule' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Not saved: you may not manage agents');
  });

  it('is refused to a role that cannot manage agents', () => {
    mockForm();
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/new', route: '/schedules/new', store: signedInStore('operator') });
    expect(screen.getByText('Only admins can create schedules.')).toBeInTheDocument();
  });
});

describe('ScheduleEditPage: one schedule', () => {
  const nightly = schedule('nightly', {
    owner: USER_ID,
    last_runs: [
      { task_id: TASK_A, scheduled_for: '2026-01-02T01:00:00Z', fired_at: '2026-01-02T01:00:00.120Z', status: 'running' },
      { task_id: TASK_B, scheduled_for: '2026-01-01T01:00:00Z', fired_at: '2026-01-01T01:00:00.050Z', status: 'failed' },
    ],
  });

  function mockOne() {
    const puts: unknown[] = [];
    let current = nightly;
    mockForm();
    server.use(
      http.get('*/api/v1/schedules/nightly', () => HttpResponse.json(current)),
      http.put('*/api/v1/schedules/nightly', async ({ request }) => {
        const body = (await request.json()) as Partial<Schedule>;
        puts.push(body);
        current = { ...current, ...body, updated_at: new Date().toISOString() };
        return HttpResponse.json(current);
      }),
    );
    return { puts };
  }

  it('shows the next and last runs and saves changes', async () => {
    const u = userEvent.setup();
    const { puts } = mockOne();
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/:name', route: '/schedules/nightly' });
    expect(await screen.findByRole('heading', { level: 1 })).toHaveTextContent('nightly');
    const next = screen.getAllByRole('list', { name: 'Next runs' })[0]!;
    expect(within(next).getAllByRole('listitem')).toHaveLength(5);
    expect(within(next).getAllByRole('listitem')[0]).toHaveTextContent(`in 2 minutes · ${formatWallClock(nightly.next_runs[0]!, 'Europe/Berlin')}`);
    expect(screen.getByText('you')).toBeInTheDocument();

    const last = screen.getByRole('table', { name: 'Last runs' });
    const rows = within(last).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getByRole('link', { name: '000000a1' })).toHaveAttribute('href', `/tasks/${TASK_A}`);
    expect(within(rows[0]!).getByText('Running')).toBeInTheDocument();
    expect(within(rows[1]!).getByRole('link', { name: `Task ${TASK_B}: failed` })).toHaveTextContent('Failed');

    // The form holds the schedule; the name cannot change.
    expect(screen.getByLabelText(/^Name/)).toBeDisabled();
    expect(screen.getByLabelText(/^Cron/)).toHaveValue('0 2 * * *');
    expect(screen.getByLabelText(/^Input \(JSON\)/)).toHaveValue(JSON.stringify({ report: 'daily' }, null, 2));
    await u.click(screen.getByRole('button', { name: 'Weekdays at 09:00' }));
    await u.click(screen.getByLabelText(/^Paused/));
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(puts).toEqual([{ agent: 'echo', input: { report: 'daily' }, cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', overlap: 'skip', catchup: 'latest', paused: true }]);
    expect(await screen.findByText('Paused: nothing fires until it is resumed.')).toBeInTheDocument();
  });

  it('shows a viewer the definition without the form or the actions', async () => {
    mockOne();
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/:name', route: '/schedules/nightly', store: signedInStore('viewer') });
    expect(await screen.findByText('Only admins can change schedules.')).toBeInTheDocument();
    expect(screen.getByRole('table', { name: 'Last runs' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Save|Pause|Run|Delete/ })).toBeNull();
  });

  it('says when there is no such schedule', async () => {
    mockForm();
    server.use(http.get('*/api/v1/schedules/gone', () => HttpResponse.json(errorBody('not_found', 'no schedule named gone'), { status: 404 })));
    renderWithStore(<ScheduleEditPage />, { path: '/schedules/:name', route: '/schedules/gone' });
    expect(await screen.findByText(/No such schedule/)).toBeInTheDocument();
  });
});
