// The form of an `llm` agent: its settings as fields, built into the config the server takes.
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore } from '@/test/utils';
import { server, useMockServer } from '@/test/msw';
import type { Agent, AgentSpec } from '@/shared/api/types';
import { AgentForm } from '../components/AgentForm';
import { AgentEditPage } from './AgentEditPage';

useMockServer();

const base: Agent = {
  name: 'writer',
  kind: 'llm',
  description: null,
  version: '1',
  input_schema: null,
  output_schema: null,
  config: { base_url: 'https://llm.example.com/v1', model: 'small-1', api_key_env: 'LLM_KEY' },
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

const lookup: Agent = { ...base, name: 'lookup_order', kind: 'http', config: { url: 'https://orders.example.com' } };

async function fill(u: ReturnType<typeof userEvent.setup>, label: string, text: string) {
  const input = screen.getByLabelText(label);
  await u.clear(input);
  await u.click(input);
  // Pasted: typing would read `{` as a key descriptor.
  await u.paste(text);
}

describe('AgentEditPage: llm agents', () => {
  it('creates one from its fields, with the key’s variable named, never the key', async () => {
    const u = userEvent.setup();
    const posts: AgentSpec[] = [];
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [lookup] })),
      http.post('*/api/v1/agents', async ({ request }) => {
        const spec = (await request.json()) as AgentSpec;
        posts.push(spec);
        return HttpResponse.json({ ...base, ...spec }, { status: 201 });
      }),
    );
    renderWithStore(<AgentEditPage />, { path: '/agents/new', route: '/agents/new' });
    await u.type(await screen.findByLabelText('Name'), 'support');
    await u.selectOptions(screen.getByLabelText('Kind'), 'llm');
    expect(screen.queryByLabelText('Configuration (JSON)')).not.toBeInTheDocument();
    expect(screen.getByLabelText('API key variable')).toHaveAccessibleDescription(/environment variable of the server.*never stored/);
    await fill(u, 'API base URL', 'https://llm.example.com/v1');
    await fill(u, 'Model', 'small-1');
    await fill(u, 'API key variable', 'LLM_KEY');
    await fill(u, 'System message', 'You answer customers.\n');
    await fill(u, 'Prompt template', 'Answer: {{ input.question }}');
    await fill(u, 'Temperature', '0.3');
    await fill(u, 'Most tokens in the answer', '512');
    await fill(u, 'Response format (JSON Schema)', '{"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}');
    await fill(u, 'Tools (agent names)', 'lookup_order, refund');
    // A name that is no agent yet is pointed out, not refused (tools are resolved when called).
    expect(screen.getByLabelText('Tools (agent names)')).toHaveAccessibleDescription(/Not an agent \(yet\): refund\./);
    await fill(u, 'Most model turns', '4');
    await fill(u, 'Price per 1,000 prompt tokens', '0.00015');
    await fill(u, 'Price per 1,000 completion tokens', '0.0006');
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    expect(await screen.findByText('elsewhere')).toBeInTheDocument();
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatchObject({ name: 'support', kind: 'llm' });
    expect(posts[0]!.config).toEqual({
      base_url: 'https://llm.example.com/v1',
      model: 'small-1',
      api_key_env: 'LLM_KEY',
      system: 'You answer customers.\n',
      prompt: 'Answer: {{ input.question }}',
      temperature: 0.3,
      max_tokens: 512,
      response_format: { type: 'object', required: ['answer'], properties: { answer: { type: 'string' } } },
      tools: ['lookup_order', 'refund'],
      max_turns: 4,
      price_per_1k_tokens: { prompt: 0.00015, completion: 0.0006 },
    });
  });

  it('shows a stored one in its fields and sends what was left alone unchanged, leaving out what is emptied', async () => {
    const u = userEvent.setup();
    const stored: Agent = {
      ...base,
      config: { ...base.config, system: 'Be brief.', temperature: 0, response_format: { type: 'object' }, tools: ['lookup_order'], price_per_1k_tokens: { prompt: 0.5, completion: 1.5 } },
    };
    const puts: AgentSpec[] = [];
    server.use(
      http.get('*/api/v1/agents', () => HttpResponse.json({ items: [stored, lookup] })),
      http.get('*/api/v1/agents/:name', () => HttpResponse.json(stored)),
      http.put('*/api/v1/agents/:name', async ({ request }) => {
        const spec = (await request.json()) as AgentSpec;
        puts.push(spec);
        return HttpResponse.json({ ...stored, ...spec, updated_at: new Date(Date.now() + puts.length).toISOString() });
      }),
    );
    renderWithStore(<AgentEditPage />, { path: '/agents/:name', route: '/agents/writer' });
    expect(await screen.findByLabelText('Model')).toHaveValue('small-1');
    expect(screen.getByLabelText('Kind')).toHaveValue('llm');
    expect(screen.getByLabelText('Temperature')).toHaveValue('0');
    expect(screen.getByLabelText('Tools (agent names)')).toHaveValue('lookup_order');
    expect(screen.getByLabelText('Price per 1,000 completion tokens')).toHaveValue('1.5');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved.')).toBeInTheDocument();
    expect(puts[0]!.config).toEqual(stored.config);

    for (const label of ['System message', 'Temperature', 'Response format (JSON Schema)', 'Tools (agent names)', 'Price per 1,000 prompt tokens', 'Price per 1,000 completion tokens']) {
      await u.clear(screen.getByLabelText(label));
    }
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    await expect.poll(() => puts.length).toBe(2);
    expect(puts[1]!.config).toEqual(base.config);
  });

  it('checks the fields before sending', async () => {
    const u = userEvent.setup();
    const sent: AgentSpec[] = [];
    renderWithStore(<AgentForm initial={null} agents={[]} onSubmit={(s) => sent.push(s)} submitting={false} error={null} creating canManageCommandAgents={false} />);
    await u.type(screen.getByLabelText('Name'), 'writer');
    // Offered to everyone who may edit agents (unlike the command kind).
    await u.selectOptions(screen.getByLabelText('Kind'), 'llm');
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    for (const label of ['API base URL', 'Model', 'API key variable']) expect(screen.getByLabelText(label)).toHaveAttribute('aria-invalid', 'true');

    await fill(u, 'API base URL', 'ftp://llm.example.com');
    await fill(u, 'Model', 'small-1');
    await fill(u, 'API key variable', 'sk-live-123');
    await fill(u, 'Temperature', '3');
    await fill(u, 'Most tokens in the answer', '0');
    await fill(u, 'Response format (JSON Schema)', '{"type": ');
    await fill(u, 'Tools (agent names)', 'lookup.order');
    await fill(u, 'Most model turns', '51');
    await fill(u, 'Price per 1,000 prompt tokens', '-1');
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    const error = (label: string) => within(screen.getByLabelText(label).closest('.field') as HTMLElement).getByText((_, el) => el?.classList.contains('field-errors') ?? false);
    expect(error('API base URL')).toHaveTextContent('must be an http or https URL');
    expect(screen.getByLabelText('Model')).not.toHaveAttribute('aria-invalid');
    expect(error('API key variable')).toHaveTextContent('the name, not the key');
    expect(error('Temperature')).toHaveTextContent('must be between 0 and 2');
    expect(error('Most tokens in the answer')).toHaveTextContent('must be at least 1');
    expect(error('Response format (JSON Schema)')).toHaveTextContent('is not valid JSON');
    expect(error('Tools (agent names)')).toHaveTextContent('"lookup.order" is not the name of an agent a model can call');
    expect(error('Most model turns')).toHaveTextContent('must be between 1 and 50');
    expect(error('Price per 1,000 prompt tokens')).toHaveTextContent('must be at least 0');

    await fill(u, 'API key variable', 'SWITCHYARD__DATABASE__URL');
    await fill(u, 'Tools (agent names)', 'writer');
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    expect(error('API key variable')).toHaveTextContent("may not start with SWITCHYARD: those variables hold the server's own settings");
    expect(error('Tools (agent names)')).toHaveTextContent('an agent cannot offer itself as a tool');
    await fill(u, 'Tools (agent names)', 'a b a');
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    expect(error('Tools (agent names)')).toHaveTextContent('"a" is listed twice');
    expect(sent).toEqual([]);

    // Only what is required: the rest is left out.
    for (const [label, text] of [
      ['API base URL', 'http://localhost:8080/v1'],
      ['API key variable', 'LLM_KEY'],
      ['Temperature', ''],
      ['Most tokens in the answer', ''],
      ['Response format (JSON Schema)', ''],
      ['Tools (agent names)', ''],
      ['Most model turns', ''],
      ['Price per 1,000 prompt tokens', ''],
    ] as const) {
      if (text === '') await u.clear(screen.getByLabelText(label));
      else await fill(u, label, text);
    }
    await u.click(screen.getByRole('button', { name: 'Create agent' }));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.config).toEqual({ base_url: 'http://localhost:8080/v1', model: 'small-1', api_key_env: 'LLM_KEY' });
  });

  it('sends a price left out as 0 when only the other is set', async () => {
    const u = userEvent.setup();
    const sent: AgentSpec[] = [];
    renderWithStore(<AgentForm initial={base} agents={[]} onSubmit={(s) => sent.push(s)} submitting={false} error={null} creating={false} canManageCommandAgents />);
    await fill(u, 'Price per 1,000 completion tokens', '2');
    await u.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(sent[0]!.config).toEqual({ ...base.config, price_per_1k_tokens: { prompt: 0, completion: 2 } });
  });
});
