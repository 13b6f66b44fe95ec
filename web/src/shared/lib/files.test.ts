import { describe, expect, it } from 'vitest';
import { fileRefIds, findFileRefs, isFileRef, PREVIEW_BYTES, previewKind, previewText } from './files';

const A = '01900000-0000-7000-8000-00000000000a';
const B = '01900000-0000-7000-8000-00000000000b';

describe('file references', () => {
  it('are objects with exactly one key, $file, holding a string', () => {
    expect(isFileRef({ $file: A })).toBe(true);
    expect(isFileRef({ $file: A, name: 'x' })).toBe(false);
    expect(isFileRef({ $file: 42 })).toBe(false);
    expect(isFileRef({ file: A })).toBe(false);
    expect(isFileRef([{ $file: A }])).toBe(false);
    expect(isFileRef(null)).toBe(false);
    expect(isFileRef(A)).toBe(false);
  });

  it('are found anywhere in a value, with their JSON pointers', () => {
    const input = {
      doc: { $file: A },
      options: { attachments: [{ $file: B }, { note: 'not a file', $file: A }], 'a/b': { $file: A } },
      count: 3,
      text: '$file',
    };
    expect(findFileRefs(input)).toEqual([
      { pointer: '/doc', id: A },
      { pointer: '/options/attachments/0', id: B },
      { pointer: '/options/a~1b', id: A },
    ]);
    expect(fileRefIds(input)).toEqual([A, B]);
    expect(findFileRefs({ $file: A })).toEqual([{ pointer: '', id: A }]);
    expect(fileRefIds(null)).toEqual([]);
    expect(fileRefIds(undefined)).toEqual([]);
    expect(fileRefIds([1, 'two', { three: [] }])).toEqual([]);
  });
});

describe('previewKind', () => {
  it('previews the image types the server serves inline, text and JSON', () => {
    expect(previewKind('image/png')).toBe('image');
    expect(previewKind('image/jpeg')).toBe('image');
    expect(previewKind('image/gif')).toBe('image');
    expect(previewKind('image/webp')).toBe('image');
    expect(previewKind('image/svg+xml')).toBeNull();
    expect(previewKind('image/tiff')).toBeNull();
    expect(previewKind('text/plain; charset=utf-8')).toBe('text');
    expect(previewKind('text/csv')).toBe('text');
    expect(previewKind('application/yaml')).toBe('text');
    expect(previewKind('application/json')).toBe('json');
    expect(previewKind('Application/JSON; charset=utf-8')).toBe('json');
    expect(previewKind('application/ld+json')).toBe('json');
    expect(previewKind('application/pdf', 'a.json')).toBeNull();
    expect(previewKind('application/zip', 'a.zip')).toBeNull();
  });

  it('goes by the name when the type says nothing', () => {
    expect(previewKind('application/octet-stream', 'data.JSON')).toBe('json');
    expect(previewKind('application/octet-stream', 'notes.md')).toBe('text');
    expect(previewKind('', 'photo.jpg')).toBe('image');
    expect(previewKind(null, 'archive.tar.gz')).toBeNull();
    expect(previewKind('application/octet-stream', 'README')).toBeNull();
  });
});

describe('previewText', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  it('pretty-prints a whole JSON file, and shows anything else as it is', () => {
    expect(previewText(bytes('{"a":[1,2],"b":"é"}'), 'json', false)).toEqual({ text: '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "é"\n}', json: true });
    expect(previewText(bytes('{"a": 1'), 'json', false)).toEqual({ text: '{"a": 1', json: false });
    expect(previewText(bytes('{"a":1}'), 'text', false)).toEqual({ text: '{"a":1}', json: false });
  });

  it('shows the start of a cut file as text, without half a character at the cut', () => {
    const cut = bytes('{"name": "naïve"}').slice(0, 13); // ends inside "ï" (2 bytes)
    expect(previewText(cut, 'json', true)).toEqual({ text: '{"name": "na', json: false });
    expect(previewText(bytes('line 1\nline 2'), 'text', true).text).toBe('line 1\nline 2');
    expect(PREVIEW_BYTES).toBe(65536);
  });
});
