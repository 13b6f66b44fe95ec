import { useState } from 'react';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Violation } from '@/shared/api/errors';
import { SchemaForm } from './SchemaForm';
import type { UploadFile, UploadOptions } from './upload';
import { fieldKind, initialValue, type JsonSchema } from './schema';
import { validate, normalizeViolation } from './validate';
import { setAt } from './pointer';

const schema: JsonSchema = {
  type: 'object',
  required: ['title', 'count'],
  properties: {
    color: { enum: ['red', 'green', 'blue'], default: 'green' },
    count: { type: 'integer', minimum: 1, maximum: 10, default: 3 },
    extra: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
    options: { type: 'object', properties: { depth: { type: 'integer', default: 2 }, mode: { type: 'string', enum: ['fast', 'slow'] } } },
    ratio: { type: 'number', minimum: 0, maximum: 1 },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
    title: { type: 'string', minLength: 1, description: 'A short title' },
    urgent: { type: 'boolean', default: false },
  },
};

let lastValue: unknown;

let lastLocalErrors = 0;

function Harness({ s = schema, violations = [], uploadFile }: { s?: JsonSchema | null; violations?: Violation[]; uploadFile?: UploadFile }) {
  const [value, setValue] = useState<unknown>(() => initialValue(s ?? {}) ?? {});
  lastValue = value;
  return (
    <SchemaForm
      schema={s}
      value={value}
      onChange={setValue}
      violations={violations}
      uploadFile={uploadFile}
      onLocalErrors={(n) => {
        lastLocalErrors = n;
      }}
    />
  );
}

describe('SchemaForm', () => {
  it('renders a labelled input per property with defaults prefilled, required fields first', () => {
    render(<Harness />);
    expect(screen.getByLabelText(/^title/)).toHaveValue('');
    expect(screen.getByLabelText(/^count/)).toHaveValue(3);
    expect(screen.getByLabelText(/^color/)).toHaveDisplayValue('green');
    expect(screen.getByLabelText(/^urgent/)).not.toBeChecked();
    expect(screen.getByLabelText(/^depth/)).toHaveValue(2);
    expect(screen.getByLabelText(/^mode/).tagName).toBe('SELECT');
    expect(screen.getByRole('group', { name: 'options' })).toBeInTheDocument();
    // A property the form cannot render as fields falls back to JSON.
    expect(screen.getByLabelText(/^extra/).tagName).toBe('TEXTAREA');
    const labels = [...document.querySelectorAll('label')].map((l) => l.textContent?.replace(/\s*\*$/, ''));
    expect(labels.slice(0, 3)).toEqual(['count', 'title', 'color']);
    expect(screen.getByLabelText(/^title/)).toHaveAttribute('aria-required', 'true');
    expect(lastValue).toEqual({ color: 'green', count: 3, options: { depth: 2 }, urgent: false });
  });

  it('edits nested objects, arrays of simple types, numbers and booleans into the value', async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(screen.getByLabelText(/^title/), 'Hello');
    await user.clear(screen.getByLabelText(/^count/));
    await user.type(screen.getByLabelText(/^count/), '7');
    await user.type(screen.getByLabelText(/^ratio/), '0.5');
    await user.click(screen.getByLabelText(/^urgent/));
    await user.selectOptions(screen.getByLabelText(/^mode/), 'slow');
    await user.selectOptions(screen.getByLabelText(/^color/), 'blue');
    await user.click(screen.getByRole('button', { name: 'Add tags' }));
    await user.type(screen.getByLabelText(/^tags 1/), 'a');
    await user.click(screen.getByRole('button', { name: 'Add tags' }));
    await user.type(screen.getByLabelText(/^tags 2/), 'b');
    expect(screen.getByRole('button', { name: 'Add tags' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Remove tags 1' }));
    await user.type(screen.getByLabelText(/^extra/), '42');
    expect(lastValue).toEqual({ color: 'blue', count: 7, options: { depth: 2, mode: 'slow' }, urgent: true, title: 'Hello', ratio: 0.5, tags: ['b'], extra: 42 });
  });

  it('removes optional values that are cleared, so the server applies its defaults', async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.clear(screen.getByLabelText(/^depth/));
    expect(lastValue).toEqual({ color: 'green', count: 3, options: {}, urgent: false });
  });

  it('shows server violations on the fields they point at, and the rest for the whole input', () => {
    render(
      <Harness
        violations={[
          { path: '', keyword: 'required', message: '"title" is a required property' },
          { path: '/count', keyword: 'maximum', message: '50 is greater than the maximum of 10' },
          { path: '/options/depth', keyword: 'type', message: '"x" is not of type "integer"' },
          { path: '/extra/deep', keyword: 'type', message: 'wrong' },
          { path: '', keyword: 'additionalProperties', message: 'unexpected property "zzz"' },
        ]}
      />,
    );
    const count = screen.getByLabelText(/^count/);
    expect(count).toHaveAttribute('aria-invalid', 'true');
    expect(count).toHaveAccessibleDescription(/50 is greater than the maximum of 10/);
    expect(screen.getByLabelText(/^title/)).toHaveAccessibleDescription(/is required/);
    expect(screen.getByLabelText(/^depth/)).toHaveAccessibleDescription(/not of type "integer"/);
    expect(screen.getByLabelText(/^extra/)).toHaveAccessibleDescription(/\/deep: wrong/);
    expect(within(screen.getByRole('alert')).getByText(/unexpected property "zzz"/)).toBeInTheDocument();
  });

  it('uses a raw JSON editor for schemas without fields, and can switch any form to JSON', async () => {
    const user = userEvent.setup();
    const { unmount } = render(<Harness s={{}} />);
    const input = screen.getByLabelText(/Input \(JSON\)/);
    await user.clear(input);
    await user.click(input);
    await user.paste('{"a": [1, 2]}');
    expect(lastValue).toEqual({ a: [1, 2] });
    unmount();

    render(<Harness />);
    await user.click(screen.getByRole('button', { name: 'Edit as JSON' }));
    const raw = screen.getByLabelText(/Input \(JSON\)/);
    expect(JSON.parse((raw as HTMLTextAreaElement).value)).toEqual({ color: 'green', count: 3, options: { depth: 2 }, urgent: false });
    await user.clear(raw);
    await user.type(raw, '{{"title": "x", "count": 2');
    expect(raw).toHaveAccessibleDescription(/not valid JSON yet/);
    expect(screen.getByRole('button', { name: 'Use the form' })).toBeDisabled();
    await user.type(raw, '}');
    await user.click(screen.getByRole('button', { name: 'Use the form' }));
    expect(screen.getByLabelText(/^title/)).toHaveValue('x');
    expect(screen.getByLabelText(/^count/)).toHaveValue(2);
  });
});

const fileSchema: JsonSchema = {
  type: 'object',
  required: ['doc'],
  properties: {
    doc: { type: 'object', format: 'file', description: 'The document to read' },
    note: { type: 'string' },
    extra: { type: 'object', properties: { picture: { contentMediaType: 'image/png' } } },
  },
};

/** An uploader the test finishes by hand: `calls[i].resolve(...)` / `.reject(...)`. */
function fakeUploader() {
  const calls: { file: File; options: UploadOptions; resolve: (id: string) => void; reject: (e: Error) => void }[] = [];
  const upload: UploadFile = (file, options = {}) =>
    new Promise((resolve, reject) => {
      options.signal?.addEventListener('abort', () => reject(new DOMException('cancelled', 'AbortError')));
      calls.push({
        file,
        options,
        resolve: (id) => resolve({ id, name: file.name, size: file.size, content_type: file.type || 'application/octet-stream' }),
        reject,
      });
    });
  return { upload, calls };
}

describe('file fields', () => {
  it('upload the picked file with progress and put its reference into the input, in nested objects too', async () => {
    const user = userEvent.setup();
    const { upload, calls } = fakeUploader();
    render(<Harness s={fileSchema} uploadFile={upload} />);
    const doc = screen.getByLabelText(/^doc/);
    expect(doc).toHaveAttribute('type', 'file');
    expect(doc).toHaveAttribute('aria-required', 'true');
    expect(doc).toHaveAccessibleDescription(/The document to read/);
    expect(screen.getByLabelText(/^picture/)).toHaveAttribute('accept', 'image/png');

    await user.upload(doc, new File(['hello world!'], 'hello.txt', { type: 'text/plain' }));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.file.name).toBe('hello.txt');
    act(() => calls[0]!.options.onProgress?.(6, 12));
    expect(screen.getByRole('progressbar', { name: 'Uploading hello.txt' })).toHaveValue(50);
    expect(screen.getByText(/Uploading hello.txt… 50 %/)).toBeInTheDocument();
    // The form cannot be sent while the upload runs.
    expect(lastLocalErrors).toBe(1);
    // Other edits made meanwhile are kept when the upload ends.
    await user.type(screen.getByLabelText(/^note/), 'hi');
    await act(async () => calls[0]!.resolve('f-1'));
    expect(lastValue).toEqual({ doc: { $file: 'f-1' }, note: 'hi', extra: {} });
    expect(lastLocalErrors).toBe(0);
    expect(screen.queryByRole('progressbar')).toBeNull();
    expect(screen.getByTestId('file-chosen')).toHaveTextContent('Uploaded hello.txt (12 B, text/plain) f-1');

    await user.upload(screen.getByLabelText(/^picture/), new File([new Uint8Array([137, 80, 78, 71])], 'dot.png', { type: 'image/png' }));
    await act(async () => calls[1]!.resolve('f-2'));
    expect(lastValue).toEqual({ doc: { $file: 'f-1' }, note: 'hi', extra: { picture: { $file: 'f-2' } } });

    await user.click(screen.getByRole('button', { name: 'Remove the file of doc' }));
    expect(lastValue).toEqual({ note: 'hi', extra: { picture: { $file: 'f-2' } } });
  });

  it('say why an upload failed, and can cancel one', async () => {
    const user = userEvent.setup();
    const { upload, calls } = fakeUploader();
    render(<Harness s={fileSchema} uploadFile={upload} />);
    const doc = screen.getByLabelText(/^doc/);
    await user.upload(doc, new File(['x'.repeat(100)], 'big.bin'));
    await act(async () => calls[0]!.reject(new Error('the file is too large for this server (the limit is 10 B)')));
    expect(doc).toHaveAttribute('aria-invalid', 'true');
    expect(doc).toHaveAccessibleDescription(/big.bin was not uploaded: the file is too large for this server \(the limit is 10 B\)/);
    expect(lastValue).toEqual({ extra: {} });
    expect(lastLocalErrors).toBe(0);

    await user.upload(doc, new File(['abc'], 'slow.txt', { type: 'text/plain' }));
    expect(doc).not.toHaveAttribute('aria-invalid');
    await user.click(screen.getByRole('button', { name: 'Cancel upload' }));
    expect(calls[1]!.options.signal?.aborted).toBe(true);
    expect(screen.queryByRole('progressbar')).toBeNull();
    expect(lastLocalErrors).toBe(0);
    expect(lastValue).toEqual({ extra: {} });
  });

  it('take a file id when the form has no uploader, and are checked before sending', async () => {
    const user = userEvent.setup();
    render(<Harness s={fileSchema} />);
    const doc = screen.getByLabelText(/^doc/);
    expect(doc).toHaveAttribute('type', 'text');
    await user.type(doc, 'f-9');
    expect(lastValue).toEqual({ doc: { $file: 'f-9' }, extra: {} });
    expect(validate(fileSchema, { doc: { $file: 'f-9' } })).toEqual([]);
    expect(validate(fileSchema, {})).toEqual([{ path: '/doc', keyword: 'required', message: 'is required' }]);
    expect(validate(fileSchema, { doc: 'f-9' })).toEqual([{ path: '/doc', keyword: 'type', message: 'must be a file: choose one to upload' }]);
  });
});

describe('schema helpers', () => {
  it('classifies schema nodes', () => {
    expect(fieldKind({ type: 'string' })).toBe('string');
    expect(fieldKind({ type: ['integer', 'null'] })).toBe('integer');
    expect(fieldKind({ default: 'permanent' })).toBe('string');
    expect(fieldKind({ enum: [1, 2] })).toBe('enum');
    expect(fieldKind({ type: 'array', items: { type: 'object', properties: { a: {} } } })).toBe('json');
    expect(fieldKind({ type: 'array', items: { enum: ['a'] } })).toBe('array');
    expect(fieldKind({ $ref: '#/x' })).toBe('json');
    expect(fieldKind({ type: 'object' })).toBe('json');
    expect(fieldKind({ format: 'file' })).toBe('file');
    expect(fieldKind({ type: 'object', format: 'file' })).toBe('file');
    expect(fieldKind({ type: 'string', contentMediaType: 'application/pdf' })).toBe('file');
    expect(fieldKind({ type: 'array', items: { format: 'file' } })).toBe('json');
  });

  it('validates like the server, with pointers', () => {
    expect(validate(schema, { count: 11, title: '', tags: ['a', 'b', 'c'], ratio: 'x' })).toEqual([
      { path: '/count', keyword: 'maximum', message: 'must be at most 10' },
      { path: '/ratio', keyword: 'type', message: 'must be a number' },
      { path: '/tags', keyword: 'maxItems', message: 'allows at most 2 items' },
      { path: '/title', keyword: 'minLength', message: 'must not be empty' },
    ]);
    expect(validate(schema, {})).toEqual([
      { path: '/title', keyword: 'required', message: 'is required' },
      { path: '/count', keyword: 'required', message: 'is required' },
    ]);
    expect(validate({ type: 'integer', multipleOf: 5 }, 12)).toMatchObject([{ keyword: 'multipleOf' }]);
  });

  it('moves the server’s required errors onto the property', () => {
    expect(normalizeViolation({ path: '/options', keyword: 'required', message: '"mode" is a required property' })).toEqual({
      path: '/options/mode',
      keyword: 'required',
      message: 'is required',
    });
  });

  it('sets and removes values by JSON pointer without mutating', () => {
    const v = { a: { b: 1 }, list: [1, 2], 'x/y': 0 };
    expect(setAt(v, '/a/c', 2)).toEqual({ a: { b: 1, c: 2 }, list: [1, 2], 'x/y': 0 });
    expect(setAt(v, '/a/b', undefined)).toEqual({ a: {}, list: [1, 2], 'x/y': 0 });
    expect(setAt(v, '/list/0', undefined)).toEqual({ a: { b: 1 }, list: [2], 'x/y': 0 });
    expect(setAt(v, '/x~1y', 5)).toEqual({ a: { b: 1 }, list: [1, 2], 'x/y': 5 });
    expect(v).toEqual({ a: { b: 1 }, list: [1, 2], 'x/y': 0 });
  });
});
