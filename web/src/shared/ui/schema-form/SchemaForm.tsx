// A form generated from an agent's input JSON Schema, with a raw-JSON mode for any input.
// Validation messages (the form's own and the server's) appear on the fields they are about.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { Violation } from '@/shared/api/errors';
import { JsonField, SchemaField, type ErrorMap } from './fields';
import { childPointer, isWithin, setAt } from './pointer';
import { asSchema, fieldKind, type JsonSchema } from './schema';
import { normalizeViolation } from './validate';
import { UploadContext, type UploadFile } from './upload';

export interface SchemaFormProps {
  schema: JsonSchema | null | undefined;
  value: unknown;
  onChange: (value: unknown) => void;
  violations?: Violation[];
  /** Called with the number of fields holding text that is not a valid value yet. */
  onLocalErrors?: (count: number) => void;
  disabled?: boolean;
  /** Uploads the file picked for a file property; without it such a property takes a file id. */
  uploadFile?: UploadFile;
}

/** Pointers of the inputs the form shows for this schema and value. */
export function renderedPointers(schema: JsonSchema, value: unknown, pointer = ''): string[] {
  const kind = fieldKind(schema);
  if (kind === 'object') {
    const obj = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
    return [pointer, ...Object.entries(schema.properties ?? {}).flatMap(([name, sub]) => renderedPointers(asSchema(sub), obj[name], childPointer(pointer, name)))];
  }
  if (kind === 'array') {
    const items = Array.isArray(value) ? value : [];
    return [pointer, ...items.map((_, i) => childPointer(pointer, i))];
  }
  return [pointer];
}

/** Puts each violation on the deepest field that contains it; the rest are about the whole input. */
export function assignViolations(violations: Violation[], pointers: string[]): { byField: ErrorMap; general: Violation[] } {
  const byField: ErrorMap = {};
  const general: Violation[] = [];
  const sorted = [...pointers].filter((p) => p !== '').sort((a, b) => b.length - a.length);
  for (const raw of violations) {
    const v = normalizeViolation(raw);
    const target = sorted.find((p) => isWithin(v.path, p));
    if (target === undefined) {
      general.push(v);
      continue;
    }
    const rest = v.path.slice(target.length);
    (byField[target] ??= []).push(rest ? `${rest}: ${v.message}` : v.message);
  }
  return { byField, general };
}

export function SchemaForm({ schema, value, onChange, violations = [], onLocalErrors, disabled, uploadFile }: SchemaFormProps) {
  const root = asSchema(schema ?? {});
  const renderable = fieldKind(root) === 'object';
  const [raw, setRaw] = useState(!renderable);
  const [localErrors, setLocalErrors] = useState<Record<string, string>>({});

  const reportLocal = useCallback((pointer: string, message: string | null) => {
    setLocalErrors((prev) => {
      if ((prev[pointer] ?? null) === message) return prev;
      const next = { ...prev };
      if (message === null) delete next[pointer];
      else next[pointer] = message;
      return next;
    });
  }, []);
  const localCount = Object.keys(localErrors).length;
  useEffect(() => onLocalErrors?.(localCount), [localCount, onLocalErrors]);

  const { byField, general } = useMemo(() => {
    if (raw || !renderable) return { byField: {} as ErrorMap, general: violations.map(normalizeViolation) };
    return assignViolations(violations, renderedPointers(root, value));
  }, [raw, renderable, violations, root, value]);

  const change = (pointer: string, v: unknown) => onChange(setAt(value, pointer, v));

  const switchMode = () => {
    setLocalErrors({});
    setRaw((r) => !r);
  };

  return (
    <UploadContext.Provider value={uploadFile ?? null}>
      <div className="schema-form">
        {renderable && (
          <div className="schema-form-mode">
            <button type="button" className="btn btn-small btn-link" onClick={switchMode} disabled={disabled || (raw && Object.keys(localErrors).length > 0)}>
              {raw ? 'Use the form' : 'Edit as JSON'}
            </button>
          </div>
        )}
        {general.length > 0 && (
          <div className="alert alert-error" role="alert">
            <p>The input is not valid:</p>
            <ul>
              {general.map((v, i) => (
                <li key={i}>
                  {v.path ? <code>{v.path}</code> : null}
                  {v.path ? ': ' : ''}
                  {v.message}
                </li>
              ))}
            </ul>
          </div>
        )}
        {raw || !renderable ? (
          <>
            {!renderable && schema && Object.keys(root).length > 0 && (
              <p className="hint">This agent's input schema has parts the form cannot show as fields; write the input as JSON.</p>
            )}
            <JsonField
              schema={root}
              name="input"
              pointer=""
              value={value}
              required
              errors={{}}
              onChange={(_p, v) => onChange(v)}
              onLocalError={reportLocal}
              disabled={disabled}
              rows={10}
            />
          </>
        ) : (
          <SchemaField schema={root} name="input" pointer="" value={value} required errors={byField} onChange={change} onLocalError={reportLocal} disabled={disabled} />
        )}
      </div>
    </UploadContext.Provider>
  );
}
