// Pretty-printed JSON with light syntax colouring, a copy button and folding for long values.
import { useMemo, type ReactNode } from 'react';
import { CopyButton } from './CopyButton';

const TOKEN = /("(?:\\u[a-fA-F0-9]{4}|\\[^u]|[^\\"])*"(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)/g;

function highlight(json: string): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  let key = 0;
  for (const m of json.matchAll(TOKEN)) {
    const index = m.index ?? 0;
    if (index > last) out.push(json.slice(last, index));
    const text = m[0];
    const cls = text.startsWith('"') ? (m[2] ? 'j-key' : 'j-str') : /true|false/.test(text) ? 'j-bool' : text === 'null' ? 'j-null' : 'j-num';
    out.push(
      <span key={key++} className={cls}>
        {text}
      </span>,
    );
    last = index + text.length;
  }
  if (last < json.length) out.push(json.slice(last));
  return out;
}

/** The highlighted, scrollable (and so focusable) block of `JSON.stringify(value, null, 2)`. */
export function JsonCode({ text }: { text: string }) {
  const lines = text.split('\n').length;
  return (
    <pre className={lines > 40 ? 'json tall' : 'json'} tabIndex={0}>
      <code>{highlight(text)}</code>
    </pre>
  );
}

export function JsonView({ value, label, emptyText = 'Nothing yet.' }: { value: unknown; label: string; emptyText?: string }) {
  const text = useMemo(() => (value === undefined ? '' : JSON.stringify(value, null, 2)), [value]);
  return (
    <section className="json-view" aria-label={label}>
      <div className="json-head">
        <h3>{label}</h3>
        {value !== undefined && value !== null && <CopyButton text={text} label="Copy JSON" />}
      </div>
      {value === undefined || value === null ? (
        <p className="muted">{emptyText}</p>
      ) : (
        <JsonCode text={text} />
      )}
    </section>
  );
}
