// A task's partial output: shown growing live on its page, and shown whole again when the page
// is opened after the task finished (replayed from what the server kept with the task).
import { expect, logIn, snap, test } from './fixtures';

interface Task {
  id: string;
  status: string;
}

// `switchyard dev` allows command agents. Each word goes to stderr as a `::partial` directive
// (a partial-output event `{"delta": "<word> "}`), a little apart, then stdout says it is done.
const SCRIPT = `for w in alpha beta gamma delta; do printf '::partial {"delta":"%s "}\\n' $w >&2; sleep 0.3; done; echo '{"done":true}'`;

test('a task’s streamed output grows live, and is shown whole again after a reload', async ({ page, api }) => {
  const agent = `words-${Date.now().toString(36)}`;
  await api.post('/api/v1/agents', {
    name: agent,
    kind: 'command',
    description: 'Streams four words.',
    // The program gets no variable of the server's but these: `sleep` is found through PATH.
    config: { program: '/bin/sh', args: ['-c', SCRIPT], pass_env: ['PATH'] },
  });

  await logIn(page);
  const task = await api.post<Task>('/api/v1/tasks', { agent, input: {} });
  await page.goto(`/tasks/${task.id}`);
  const text = page.getByTestId('stream-text');
  await expect(text).toContainText('alpha');
  await expect(text).toHaveText(/^\s*alpha beta gamma delta\s*$/);
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
  await expect(page.getByRole('region', { name: 'Streamed output' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Output', exact: true })).toContainText('"done": true');
  // Directives are not log lines.
  await expect(page.getByRole('log', { name: 'Task log' })).not.toContainText('::partial');

  // Opened again after the end: nothing is live any more, the server replays what it kept.
  await page.reload();
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
  await expect(page.getByRole('region', { name: 'Streamed output' }).getByTestId('stream-text')).toHaveText(/^\s*alpha beta gamma delta\s*$/);
  await snap(page, 'task-streamed-output');
});
