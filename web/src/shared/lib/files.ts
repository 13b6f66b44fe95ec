// Files in task input and output: `{"$file": "<id>"}` (an object with exactly that one key) is a
// reference to a stored file. These helpers find such references and decide how a file can be
// shown in the page (no requests here: see features/files/filesApi.ts).

export interface FileRefValue {
  $file: string;
}

export interface FileRef {
  /** JSON pointer of the reference inside the value, e.g. `/doc` or `/pages/0`. */
  pointer: string;
  id: string;
}

export function isFileRef(value: unknown): value is FileRefValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '$file' && typeof (value as Record<string, unknown>).$file === 'string';
}

function pointerSegment(s: string | number): string {
  return `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** Every file reference in a JSON value, in document order. */
export function findFileRefs(value: unknown, pointer = ''): FileRef[] {
  if (isFileRef(value)) return [{ pointer, id: value.$file }];
  if (Array.isArray(value)) return value.flatMap((item, i) => findFileRefs(item, pointer + pointerSegment(i)));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => findFileRefs(v, pointer + pointerSegment(k)));
  }
  return [];
}

/** The ids of the files a value references, each once, in document order. */
export function fileRefIds(value: unknown): string[] {
  return [...new Set(findFileRefs(value).map((r) => r.id))];
}

export type PreviewKind = 'image' | 'text' | 'json';

/** Text and JSON previews show at most this much of a file. */
export const PREVIEW_BYTES = 64 * 1024;

/** Images are previewed whole; bigger ones only when asked. */
export const IMAGE_PREVIEW_AUTO_BYTES = 8 * 1024 * 1024;

// The image types the server serves inline (and every browser shows).
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const TEXT_TYPES = new Set([
  'application/xml',
  'application/yaml',
  'application/x-yaml',
  'application/x-ndjson',
  'application/javascript',
  'application/toml',
  'application/sql',
]);
const BY_EXTENSION: Record<string, PreviewKind> = {
  png: 'image',
  jpg: 'image',
  jpeg: 'image',
  gif: 'image',
  webp: 'image',
  json: 'json',
  txt: 'text',
  text: 'text',
  log: 'text',
  md: 'text',
  csv: 'text',
  tsv: 'text',
  yaml: 'text',
  yml: 'text',
  xml: 'text',
  toml: 'text',
  ndjson: 'text',
  jsonl: 'text',
};

/** How a file can be previewed from its content type (its name when the type says nothing), or null. */
export function previewKind(contentType: string | null | undefined, name = ''): PreviewKind | null {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (IMAGE_TYPES.has(type)) return 'image';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type.startsWith('text/') || TEXT_TYPES.has(type)) return 'text';
  if (type === '' || type === 'application/octet-stream') {
    const dot = name.lastIndexOf('.');
    return dot >= 0 ? (BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? null) : null;
  }
  return null;
}

/**
 * The text a text or JSON preview shows: the bytes read (the first `PREVIEW_BYTES` of a bigger
 * file, `truncated`), decoded as UTF-8 without a character cut in half at the end; a whole JSON
 * file pretty-printed (`json: true`), anything that does not parse as it is.
 */
export function previewText(bytes: Uint8Array, kind: 'text' | 'json', truncated: boolean): { text: string; json: boolean } {
  // `stream: true` keeps an incomplete last character back instead of decoding it as U+FFFD.
  const text = new TextDecoder('utf-8').decode(bytes, { stream: truncated });
  if (kind === 'json' && !truncated) {
    try {
      return { text: JSON.stringify(JSON.parse(text), null, 2), json: true };
    } catch {
      // Not valid JSON after all: show it as text.
    }
  }
  return { text, json: false };
}
