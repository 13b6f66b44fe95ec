// Files through the UI against the real server: an agent whose input has a `format: file`
// property, a text file uploaded through the submit form, the task page listing it under
// "Input files" with its preview and a working download, and the output's reference to it
// linking there. A file over files.max_bytes (1 MiB in global-setup.ts) is refused with the
// server's reason.
import { readFile } from 'node:fs/promises';
import { expect, logIn, snap, test } from './fixtures';

const AGENT = 'e2e-file-reader';
const TEXT = 'hello from a file\nsecond line: ünïcödé\n';

interface FileView {
  id: string;
  name: string;
  size: number;
  content_type: string;
}

interface Task {
  id: string;
  status: string;
  input: { doc?: { $file: string } };
}

test('submit a task with a file uploaded through the form, then preview and download it', async ({ page, api }) => {
  await api.post('/api/v1/agents', {
    name: AGENT,
    kind: 'echo',
    description: 'Echoes its input, a file among it.',
    input_schema: {
      type: 'object',
      required: ['doc'],
      properties: {
        doc: { type: 'object', format: 'file', description: 'A text file to read' },
        note: { type: 'string' },
      },
    },
  });

  await logIn(page);
  await page.getByRole('link', { name: 'Submit task' }).click();
  await expect(page.getByRole('heading', { name: 'Submit a task' })).toBeVisible();
  await page.getByRole('form', { name: 'Submit a task' }).getByLabel(/^Agent/).selectOption(AGENT);
  await expect(page).toHaveURL(new RegExp(`agent=${AGENT}`));

  const doc = page.getByLabel(/^doc/);
  await expect(doc).toHaveAttribute('type', 'file');

  // Too big for this server: refused, with its reason, and nothing is put into the input.
  await doc.setInputFiles({ name: 'huge.txt', mimeType: 'text/plain', buffer: Buffer.alloc(2 * 1024 * 1024, 'x') });
  await expect(page.getByText(/huge\.txt was not uploaded: the file is too large for this server/)).toBeVisible();
  await expect(doc).toHaveAttribute('aria-invalid', 'true');

  await doc.setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from(TEXT) });
  const size = Buffer.byteLength(TEXT);
  const chosen = page.getByTestId('file-chosen');
  await expect(chosen).toContainText(`Uploaded hello.txt (${size} B, text/plain)`);
  await expect(doc).not.toHaveAttribute('aria-invalid');
  const fileId = (await chosen.locator('code').textContent())!.trim();
  const stored = await api.get<FileView>(`/api/v1/files/${fileId}`);
  expect(stored).toMatchObject({ id: fileId, name: 'hello.txt', size, content_type: 'text/plain' });

  await page.getByLabel(/^note/).fill('read this');
  await snap(page, 'submit-with-file');
  await page.getByRole('button', { name: 'Submit task' }).click();
  await page.getByRole('status').filter({ hasText: 'Submitted' }).getByRole('link').click();

  await expect(page.getByRole('heading', { name: /^Task / })).toBeVisible();
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
  const taskId = page.url().split('/tasks/')[1]!.split(/[?#]/)[0]!;
  const task = await api.get<Task>(`/api/v1/tasks/${taskId}`);
  expect(task.input).toEqual({ doc: { $file: fileId }, note: 'read this' });

  // The input file: name, size, type and its text.
  const inputs = page.getByRole('list', { name: 'Input files' });
  const item = inputs.getByRole('listitem', { name: 'hello.txt' });
  await expect(item).toContainText(`${size} B`);
  await expect(item).toContainText('text/plain');
  await expect(item.getByRole('figure', { name: 'Preview of hello.txt' })).toContainText('second line: ünïcödé');
  // The echo agent has uploaded nothing.
  await expect(page.getByText("The task's agent has uploaded no files.")).toBeVisible();

  // A working download: the same bytes, under the file's name.
  const downloading = page.waitForEvent('download');
  await item.getByRole('button', { name: 'Download hello.txt' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('hello.txt');
  expect(await readFile((await download.path())!, 'utf8')).toBe(TEXT);

  await snap(page, 'task-files');

  // The reference in the input and in the (echoed) output links to the file's entry.
  await expect(page.getByRole('region', { name: 'Input' }).getByRole('link', { name: `"${fileId}"` })).toHaveAttribute('href', `#file-${fileId}`);
  await page.getByRole('region', { name: 'Output' }).getByRole('link', { name: `"${fileId}"` }).click();
  await expect(page).toHaveURL(new RegExp(`#file-${fileId}$`));
  await expect(item).toBeInViewport();
  await expect(page.getByTestId('task-status')).toContainText('Succeeded');
});
