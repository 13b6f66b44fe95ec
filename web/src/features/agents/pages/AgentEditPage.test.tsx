import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it, vi } from 'vitest';
import { renderWithStore } from '@/test/utils';
import { server, useMockServer } from '@/test/msw';
import type { Agent, AgentSpec } from '@/shared/api/types';
import { AgentForm } from '../components/AgentForm';
import { AgentEditPage } from './AgentEditPage';

useMockServer();

const base: Agent = {
  name: 'summarize',
  kind: 'echo',
  description: null,
  version: '1',
  input_schema: null,
  output_schema: null,
  config: {},
  retry: { max_attempts: 5, base_ms: 200, cap_ms: 30000 },
  timeout_ms: 60000,
  concurrency: null,
  cache_ttl_ms: null,
  fallback: null,
  priority: 0,
  builtin: false,
  secrets: [],
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
};

function mockAgent(agent: Agent) {
  const puts: AgentSpec[] = [];
  let current = agent;
  server.use(
    http.get('*/api/v1/agents', () => HttpResponse.json({ items: [current] })),
    http.get('*/api/v1/agents/:name', () => HttpResponse.json(current)),
    http.put('*/api/v1/agents/:name', async ({ request }) => {
      const spec = (await request.json()) as AgentSpec;
      puts.push(spec);
      current = { ...base, ...spec, updated_at: new Date(Date.now() + puts.length).toISOString() } as Agent;
      return HttpResponse.json(current);
    }),
  );
  return { puts };
}

const render = () => renderWithStore(<AgentEditPage />, { path: '/agents/:name', route: '/agents/summarize' });

describe('AgentEditPage: flow control', () => {
  it('sends the concurrency key, per-key limit and rate limit that are filled in', async () => {
    const u = userEvent.setup();
    const { puts } = mockAgent(base);
    render();
    const key = await screen.findByLabelText('Concurrency key');
    expect(key).toHaveAttribute('placeholder', '/customer_id');
    expect(key).toHaveAccessibleDescription(/e\.g\. \/customer_id/);
    await u.type(key, '/customer_id');
    await u.type(screen.getByLabelText('Concurrency per key'), '3');
    await u.type(screen.getByLabelText('Rate limit (tasks)'), '100');
    await u.type(screen.getByLabelText('Rate period (s)'), '60');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(puts[0]).toMatchObject({ concurrency_key: '/customer_id', concurrency_per_key: 3, rate_limit: { limit: 100, period_s: 60 } });
    expect(puts[0]!.rate_limit).not.toHaveProperty('key');
  });

  it('shows the stored values, and leaves emptied fields out of the body', async () => {
    const u = userEvent.setup();
    const { puts } = mockAgent({ ...base, concurrency_key: '/customer_id', concurrency_per_key: 2, rate_limit: { limit: 10, period_s: 1, key: '/customer_id' } });
    render();
    expect(await screen.findByLabelText('Concurrency key')).toHaveValue('/customer_id');
    expect(screen.getByLabelText('Concurrency per key')).toHaveValue(2);
    expect(screen.getByLabelText('Rate limit (tasks)')).toHaveValue(10);
    expect(screen.getByLabelText('Rate period (s)')).toHaveValue(1);
    expect(screen.getByLabelText('Rate limit key')).toHaveValue('/customer_id');

    // Unchanged: sent as they were.
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(puts[0]).toMatchObject({ concurrency_key: '/customer_id', concurrency_per_key: 2, rate_limit: { limit: 10, period_s: 1, key: '/customer_id' } });

    for (const label of ['Concurrency key', 'Concurrency per key', 'Rate limit (tasks)', 'Rate period (s)', 'Rate limit key']) await u.clear(await screen.findByLabelText(label));
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    await screen.findByText('Saved.');
    await vi.waitFor(() => expect(puts).toHaveLength(2));
    expect(puts[1]).not.toHaveProperty('concurrency_key');
    expect(puts[1]).not.toHaveProperty('concurrency_per_key');
    expect(puts[1]).not.toHaveProperty('rate_limit');
  });

  it('checks pointers and that a rate limit has both its numbers', async () => {
    const u = userEvent.setup();
    const { puts } = mockAgent(base);
    render();
    await u.type(await screen.findByLabelText('Concurrency key'), 'customer_id');
    await u.type(screen.getByLabelText('Concurrency per key'), '0');
    await u.type(screen.getByLabelText('Rate limit (tasks)'), '5');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('must be a JSON pointer starting with /, e.g. /customer_id')).toBeInTheDocument();
    expect(screen.getByLabelText('Concurrency key')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByText('must be at least 1')).toBeInTheDocument();
    expect(screen.getByText('is required with a rate limit')).toBeInTheDocument();
    expect(screen.getByLabelText('Rate period (s)')).toHaveAttribute('aria-invalid', 'true');
    expect(puts).toEqual([]);
  });

  it('wants a per-key rate limit to read the concurrency key', async () => {
    const u = userEvent.setup();
    const { puts } = mockAgent(base);
    render();
    await u.type(await screen.findByLabelText('Concurrency key'), '/customer_id');
    await u.type(screen.getByLabelText('Rate limit (tasks)'), '5');
    await u.type(screen.getByLabelText('Rate period (s)'), '1');
    await u.type(screen.getByLabelText('Rate limit key'), '/api_key_id');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('must be the concurrency key (/customer_id) or empty')).toBeInTheDocument();
    expect(puts).toEqual([]);
    await u.clear(screen.getByLabelText('Rate limit key'));
    await u.type(screen.getByLabelText('Rate limit key'), '/customer_id');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(puts[0]).toMatchObject({ concurrency_key: '/customer_id', rate_limit: { limit: 5, period_s: 1, key: '/customer_id' } });
  });
});

describe('AgentEditPage: command agents', () => {
  const command: Agent = {
    ...base,
    name: 'shell',
    kind: 'command',
    config: { program: '/bin/sh', args: ['-c', 'echo "$1"', 'sh', '{{ input.text }}'], env: { TOKEN: '***' }, pass_env: ['PATH'] },
    secrets: ['/config/env/TOKEN'],
  };

  it('creates one from its fields', async () => {
    const u = userEvent.setup();
    const posts: AgentSpec[] = [];
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [] })),
      http.post('*/api/v1/agents', async ({ request }) => {
        const spec = (await request.json()) as AgentSpec;
        posts.push(spec);
        return HttpResponse.json({ ...base, ...spec }, { status: 201 });
      }),
    );
    renderWithStore(<AgentEditPage />, { path: '/agents/new', route: '/agents/new' });
    await u.type(await screen.findByLabelText('Name'), 'thumbnail');
    await u.selectOptions(screen.getByLabelText('Kind'), 'command');
    await u.type(screen.getByLabelText('Program'), '/usr/bin/python3');
    await u.click(screen.getByLabelText('Arguments (one per line)'));
    await u.paste('thumb.py\n--size={{ input.size }}\n\n{{ input.path }}');
    await u.click(screen.getByLabelText('Environment (NAME=value per line)'));
    await u.paste('API_TOKEN=a=b\nMODE=fast');
    await u.type(screen.getByLabelText('Variables passed on'), 'PATH, HOME');
    await u.click(screen.getByLabelText('Exit statuses (STATUS=class per line)'));
    await u.paste('3=retryable');
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    expect(await screen.findByText('elsewhere')).toBeInTheDocument();
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatchObject({ name: 'thumbnail', kind: 'command' });
    expect(posts[0]!.config).toEqual({
      program: '/usr/bin/python3',
      args: ['thumb.py', '--size={{ input.size }}', '{{ input.path }}'],
      env: { API_TOKEN: 'a=b', MODE: 'fast' },
      pass_env: ['PATH', 'HOME'],
      exit_codes: { '3': 'retryable' },
    });
  });

  it('shows stored secrets masked and sends the mask back to keep them', async () => {
    const u = userEvent.setup();
    const { puts } = mockAgent(command);
    render();
    expect(await screen.findByLabelText('Program')).toHaveValue('/bin/sh');
    expect(screen.getByLabelText('Arguments (one per line)')).toHaveValue('-c\necho "$1"\nsh\n{{ input.text }}');
    expect(screen.getByLabelText('Environment (NAME=value per line)')).toHaveValue('TOKEN=***');
    expect(screen.getByLabelText('Environment (NAME=value per line)')).toHaveAccessibleDescription(/write-only/);
    expect(screen.queryByLabelText('Configuration (JSON)')).not.toBeInTheDocument();
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(puts[0]!.config).toEqual(command.config);
  });

  it('checks the program, the environment lines and the exit statuses', async () => {
    const u = userEvent.setup();
    const { puts } = mockAgent(command);
    render();
    const program = await screen.findByLabelText('Program');
    await u.clear(program);
    await u.type(program, 'python3');
    await u.clear(screen.getByLabelText('Environment (NAME=value per line)'));
    await u.paste('TOKEN=***\nnot a variable');
    await u.click(screen.getByLabelText('Exit statuses (STATUS=class per line)'));
    await u.paste('0=retryable');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText(/must be an absolute path, e\.g\. \/usr\/bin\/python3/)).toBeInTheDocument();
    expect(screen.getByText(/write NAME=value lines/)).toBeInTheDocument();
    expect(screen.getByText(/write STATUS=class lines/)).toBeInTheDocument();
    expect(puts).toEqual([]);
  });

  it('offers the command kind to admins only', () => {
    const props = { initial: null, agents: [], onSubmit: () => {}, submitting: false, error: null, creating: true };
    const kinds = () => Array.from((screen.getByLabelText('Kind') as HTMLSelectElement).options).map((o) => o.value);
    const { unmount } = renderWithStore(<AgentForm {...props} canManageCommandAgents />);
    expect(kinds()).toContain('command');
    unmount();
    renderWithStore(<AgentForm {...props} canManageCommandAgents={false} />);
    expect(kinds()).not.toContain('command');
    expect(kinds()).toContain('http');
  });
});
