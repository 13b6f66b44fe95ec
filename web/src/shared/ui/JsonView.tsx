// Pretty-printed JSON with light syntax colouring, a copy button and folding for long values.
// File references (`{"$file": id}`) can be links to the file.
import { useMemo, type ReactNode } from 'react';
import { fileRefIds } from '@/shared/lib/files';
import { CopyButton } from './CopyButton';

/** Where a file reference's id links to (its entry on the page), or undefined for no link. */
export type FileHref = (id: string) => string | undefined;

interface FileLinks {
  ids: ReadonlySet<string>;
  href: FileHref;
}

const TOKEN = /("(?:\\u[a-fA-F0-9]{4}|\\[^u]|[^\\"])*"(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)/g;

function fileLinkOf(text: string, links: FileLinks | undefined): string | undefined {
  if (!links) return undefined;
  try {
    const id: unknown = JSON.parse(text);
    return typeof id === 'string' && links.ids.has(id) ? links.href(id) : undefined;
  } catch {
    return undefined;
  }
}

function highlight(json: string, links?: FileLinks): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  let key = 0;
  let afterFileKey = false;
  for (const m of json.matchAll(TOKEN)) {
    const index = m.index ?? 0;
    if (index > last) out.push(json.slice(last, index));
    const text = m[0];
    const cls = text.startsWith('"') ? (m[2] ? 'j-key' : 'j-str') : /true|false/.test(text) ? 'j-bool' : text === 'null' ? 'j-null' : 'j-num';
    const href = afterFileKey && cls === 'j-str' ? fileLinkOf(text, links) : undefined;
    out.push(
      href ? (
        <a key={key++} className={`${cls} file-link`} href={href} title="Go to the file">
          {text}
        </a>
      ) : (
        <span key={key++} className={cls}>
          {text}
        </span>
      ),
    );
    afterFileKey = cls === 'j-key' && text.startsWith('"$file"');
    last = index + text.length;
  }
  if (last < json.length) out.push(json.slice(last));
  return out;
}

/** The highlighted, scrollable (and so focusable) block of `JSON.stringify(value, null, 2)`. */
export function JsonCode({ text, fileLinks }: { text: string; fileLinks?: FileLinks }) {
  const lines = text.split('\n').length;
  return (
    <pre className={lines > 40 ? 'json tall' : 'json'} tabIndex={0}>
      <code>{highlight(text, fileLinks)}</code>
    </pre>
  );
}

export function JsonView({ value, label, emptyText = 'Nothing yet.', fileHref }: { value: unknown; label: string; emptyText?: string; fileHref?: FileHref }) {
  const text = useMemo(() => (value === undefined ? '' : JSON.stringify(value, null, 2)), [value]);
  const fileLinks = useMemo(() => (fileHref ? { ids: new Set(fileRefIds(value)), href: fileHref } : undefined), [value, fileHref]);
  return (
    <section className="json-view" aria-label={label}>
      <div className="json-head">
        <h3>{label}</h3>
        {value !== undefined && value !== null && <CopyButton text={text} label="Copy JSON" />}
      </div>
      {value === undefined || value === null ? (
        <p className="muted">{emptyText}</p>
      ) : (
        <JsonCode text={text} fileLinks={fileLinks} />
      )}
    </section>
  );
}
