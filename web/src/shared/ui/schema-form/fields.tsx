// One input per schema node. Every input has a label, its hint and its errors are tied to it
// with aria-describedby, and invalid inputs carry aria-invalid.
import { useContext, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { isFileRef } from '@/shared/lib/files';
import { formatBytes } from '@/shared/lib/format';
import { asSchema, enumOptions, fieldKind, isRequired, schemaTypes, type JsonSchema } from './schema';
import { childPointer } from './pointer';
import { UploadContext, type UploadedFile } from './upload';

export type ErrorMap = Record<string, string[]>;

export interface FieldProps {
  schema: JsonSchema;
  name: string;
  pointer: string;
  value: unknown;
  required: boolean;
  errors: ErrorMap;
  onChange: (pointer: string, value: unknown) => void;
  /** Text typed into a field that is not a value yet (bad number, unfinished JSON). */
  onLocalError?: (pointer: string, message: string | null) => void;
  disabled?: boolean;
}

function fieldId(pointer: string, base: string): string {
  return `${base}${pointer.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
}

function labelText(schema: JsonSchema, name: string): string {
  return schema.title ?? name;
}

function FieldShell({
  id,
  label,
  required,
  hint,
  errors,
  children,
  inline,
}: {
  id: string;
  label: string;
  required: boolean;
  hint?: string;
  errors: string[];
  children: ReactNode;
  inline?: boolean;
}) {
  return (
    <div className={`field${inline ? ' field-inline' : ''}${errors.length ? ' has-error' : ''}`}>
      {!inline && (
        <label htmlFor={id}>
          {label}
          {required && (
            <span className="required" aria-hidden="true">
              {' '}
              *
            </span>
          )}
        </label>
      )}
      {children}
      {inline && (
        <label htmlFor={id}>
          {label}
          {required && <span className="required" aria-hidden="true"> *</span>}
        </label>
      )}
      {hint && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {errors.length > 0 && (
        <ul className="field-errors" id={`${id}-errors`}>
          {errors.map((e, i) => (
            <li key={i}>{e}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function describedBy(id: string, hint: string | undefined, errors: string[]): string | undefined {
  const ids = [hint ? `${id}-hint` : null, errors.length ? `${id}-errors` : null].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

function numberHint(schema: JsonSchema): string | undefined {
  const parts: string[] = [];
  if (schema.minimum !== undefined) parts.push(`at least ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) parts.push(`more than ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) parts.push(`at most ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) parts.push(`less than ${schema.exclusiveMaximum}`);
  return parts.length ? parts.join(', ') : undefined;
}

function joinHints(...hints: (string | undefined)[]): string | undefined {
  const h = hints.filter(Boolean);
  return h.length ? h.join(' · ') : undefined;
}

function defaultHint(schema: JsonSchema): string | undefined {
  return schema.default !== undefined ? `Default: ${JSON.stringify(schema.default)}` : undefined;
}

export function SchemaField(props: FieldProps) {
  const kind = fieldKind(props.schema);
  switch (kind) {
    case 'string':
      return <StringField {...props} />;
    case 'number':
    case 'integer':
      return <NumberField {...props} integer={kind === 'integer'} />;
    case 'boolean':
      return <BooleanField {...props} />;
    case 'enum':
      return <EnumField {...props} />;
    case 'object':
      return <ObjectField {...props} />;
    case 'array':
      return <ArrayField {...props} />;
    case 'file':
      return <FileField {...props} />;
    default:
      return <JsonField {...props} />;
  }
}

function StringField({ schema, name, pointer, value, required, errors, onChange, disabled }: FieldProps) {
  const base = useId();
  const id = fieldId(pointer, base);
  const errs = errors[pointer] ?? [];
  const hint = joinHints(
    schema.description,
    schema.maxLength !== undefined ? `up to ${schema.maxLength} characters` : undefined,
    schema.format ? `format: ${schema.format}` : undefined,
  );
  const long = (schema.maxLength ?? 0) > 200 || schema.format === 'textarea';
  const inputType = schema.format === 'email' ? 'email' : schema.format === 'uri' ? 'url' : 'text';
  const common = {
    id,
    name: pointer,
    value: typeof value === 'string' ? value : '',
    disabled,
    'aria-required': required || undefined,
    'aria-invalid': errs.length > 0 || undefined,
    'aria-describedby': describedBy(id, hint, errs),
    onChange: (e: { target: { value: string } }) => onChange(pointer, e.target.value === '' && !required ? undefined : e.target.value),
  };
  return (
    <FieldShell id={id} label={labelText(schema, name)} required={required} hint={hint} errors={errs}>
      {long ? <textarea rows={4} {...common} /> : <input type={inputType} {...common} />}
    </FieldShell>
  );
}

function NumberField({ schema, name, pointer, value, required, errors, onChange, onLocalError, disabled, integer }: FieldProps & { integer: boolean }) {
  const base = useId();
  const id = fieldId(pointer, base);
  const [draft, setDraft] = useState(typeof value === 'number' ? String(value) : '');
  const [localError, setLocalError] = useState<string | null>(null);
  useEffect(() => {
    // Follow changes made elsewhere (defaults, the JSON editor), keep the user's typing otherwise.
    setDraft((d) => {
      const parsed = d.trim() === '' ? undefined : Number(d);
      if (parsed === value || (value === undefined && d.trim() === '')) return d;
      return typeof value === 'number' ? String(value) : '';
    });
  }, [value]);
  const errs = [...(localError ? [localError] : []), ...(errors[pointer] ?? [])];
  const hint = joinHints(schema.description, numberHint(schema), integer ? 'whole number' : undefined);
  return (
    <FieldShell id={id} label={labelText(schema, name)} required={required} hint={hint} errors={errs}>
      <input
        id={id}
        name={pointer}
        type="number"
        inputMode={integer ? 'numeric' : 'decimal'}
        step={schema.multipleOf ?? (integer ? 1 : 'any')}
        min={schema.minimum}
        max={schema.maximum}
        value={draft}
        disabled={disabled}
        aria-required={required || undefined}
        aria-invalid={errs.length > 0 || undefined}
        aria-describedby={describedBy(id, hint, errs)}
        onChange={(e) => {
          const text = e.target.value;
          setDraft(text);
          if (text.trim() === '') {
            setLocalError(null);
            onLocalError?.(pointer, null);
            onChange(pointer, undefined);
            return;
          }
          const n = Number(text);
          if (!Number.isFinite(n)) {
            setLocalError('must be a number');
            onLocalError?.(pointer, 'must be a number');
            return;
          }
          setLocalError(null);
          onLocalError?.(pointer, null);
          onChange(pointer, n);
        }}
      />
    </FieldShell>
  );
}

function BooleanField({ schema, name, pointer, value, required, errors, onChange, disabled }: FieldProps) {
  const base = useId();
  const id = fieldId(pointer, base);
  const errs = errors[pointer] ?? [];
  const hint = schema.description;
  return (
    <FieldShell id={id} label={labelText(schema, name)} required={required} hint={hint} errors={errs} inline>
      <input
        id={id}
        name={pointer}
        type="checkbox"
        checked={value === true}
        disabled={disabled}
        aria-invalid={errs.length > 0 || undefined}
        aria-describedby={describedBy(id, hint, errs)}
        onChange={(e) => onChange(pointer, e.target.checked ? true : required || schema.default !== undefined ? false : undefined)}
      />
    </FieldShell>
  );
}

function optionLabel(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function EnumField({ schema, name, pointer, value, required, errors, onChange, disabled }: FieldProps) {
  const base = useId();
  const id = fieldId(pointer, base);
  const errs = errors[pointer] ?? [];
  const options = enumOptions(schema);
  const current = value === undefined ? '' : JSON.stringify(value);
  const hint = schema.description;
  const { nullable } = schemaTypes(schema);
  return (
    <FieldShell id={id} label={labelText(schema, name)} required={required} hint={hint} errors={errs}>
      <select
        id={id}
        name={pointer}
        value={current}
        disabled={disabled}
        aria-required={required || undefined}
        aria-invalid={errs.length > 0 || undefined}
        aria-describedby={describedBy(id, hint, errs)}
        onChange={(e) => onChange(pointer, e.target.value === '' ? undefined : JSON.parse(e.target.value))}
      >
        {(!required || value === undefined) && <option value="">{schema.default !== undefined ? `(default: ${optionLabel(schema.default)})` : '— choose —'}</option>}
        {options.map((o) => (
          <option key={JSON.stringify(o)} value={JSON.stringify(o)}>
            {optionLabel(o)}
          </option>
        ))}
        {nullable && !options.includes(null) && <option value="null">null</option>}
      </select>
    </FieldShell>
  );
}

/** Required properties first, otherwise in the schema's order. */
function orderedProperties(schema: JsonSchema): [string, JsonSchema | boolean][] {
  const entries = Object.entries(schema.properties ?? {});
  return [...entries.filter(([p]) => isRequired(schema, p)), ...entries.filter(([p]) => !isRequired(schema, p))];
}

function ObjectField({ schema, name, pointer, value, errors, onChange, onLocalError, disabled }: FieldProps) {
  const obj = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  const errs = errors[pointer] ?? [];
  const fields = (
    <div className="fields">
      {orderedProperties(schema).map(([prop, sub]) => (
        <SchemaField
          key={prop}
          schema={asSchema(sub)}
          name={prop}
          pointer={childPointer(pointer, prop)}
          value={obj[prop]}
          required={isRequired(schema, prop)}
          errors={errors}
          onChange={onChange}
          onLocalError={onLocalError}
          disabled={disabled}
        />
      ))}
    </div>
  );
  if (pointer === '') return fields;
  return (
    <fieldset className={`fieldset${errs.length ? ' has-error' : ''}`}>
      <legend>{labelText(schema, name)}</legend>
      {schema.description && <p className="hint">{schema.description}</p>}
      {errs.length > 0 && (
        <ul className="field-errors">
          {errs.map((e, i) => (
            <li key={i}>{e}</li>
          ))}
        </ul>
      )}
      {fields}
    </fieldset>
  );
}

function ArrayField({ schema, name, pointer, value, required, errors, onChange, onLocalError, disabled }: FieldProps) {
  const items = Array.isArray(value) ? value : [];
  const itemSchema = asSchema(schema.items);
  const errs = errors[pointer] ?? [];
  const label = labelText(schema, name);
  const canAdd = schema.maxItems === undefined || items.length < schema.maxItems;
  const add = () => {
    const kind = fieldKind(itemSchema);
    const fresh = itemSchema.default ?? (kind === 'boolean' ? false : kind === 'string' ? '' : kind === 'enum' ? enumOptions(itemSchema)[0] : 0);
    onChange(pointer, [...items, fresh]);
  };
  return (
    <fieldset className={`fieldset array${errs.length ? ' has-error' : ''}`}>
      <legend>
        {label}
        {required && <span className="required" aria-hidden="true"> *</span>}
      </legend>
      {schema.description && <p className="hint">{schema.description}</p>}
      {errs.length > 0 && (
        <ul className="field-errors">
          {errs.map((e, i) => (
            <li key={i}>{e}</li>
          ))}
        </ul>
      )}
      {items.length === 0 && <p className="muted small">No items.</p>}
      {items.map((item, i) => (
        <div className="array-item" key={i}>
          <SchemaField
            schema={{ ...itemSchema, title: `${label} ${i + 1}` }}
            name={`${name}[${i}]`}
            pointer={childPointer(pointer, i)}
            value={item}
            required
            errors={errors}
            onChange={(p, v) => onChange(p, v === undefined ? (fieldKind(itemSchema) === 'string' ? '' : v) : v)}
            onLocalError={onLocalError}
            disabled={disabled}
          />
          <button
            type="button"
            className="btn btn-small"
            aria-label={`Remove ${label} ${i + 1}`}
            disabled={disabled}
            onClick={() => onChange(pointer, items.filter((_, j) => j !== i))}
          >
            Remove
          </button>
        </div>
      ))}
      <button type="button" className="btn btn-small" onClick={add} disabled={disabled || !canAdd}>
        Add {label}
      </button>
    </fieldset>
  );
}

const UPLOADING = 'wait for the upload to finish';

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/**
 * A file property: picking a file uploads it (with progress, and the reason when the server
 * refuses it) and puts `{"$file": id}` into the input. Without an uploader (none passed to the
 * form) the id of a file uploaded elsewhere is typed in.
 */
function FileField({ schema, name, pointer, value, required, errors, onChange, onLocalError, disabled }: FieldProps) {
  const upload = useContext(UploadContext);
  const base = useId();
  const id = fieldId(pointer, base);
  const label = labelText(schema, name);
  const picker = useRef<HTMLInputElement>(null);
  const inflight = useRef<AbortController | null>(null);
  const [uploaded, setUploaded] = useState<UploadedFile | null>(null);
  const [progress, setProgress] = useState<{ name: string; loaded: number; total: number } | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const currentId = isFileRef(value) ? value.$file : null;

  // The upload ends after later renders: report to the form's callbacks of then, whose value
  // has any other edits made in the meantime.
  const report = useRef(onLocalError);
  const change = useRef(onChange);
  useEffect(() => {
    report.current = onLocalError;
    change.current = onChange;
  });
  // Leaving the form mid-upload cancels it.
  useEffect(
    () => () => {
      const ctrl = inflight.current;
      if (!ctrl) return;
      inflight.current = null;
      ctrl.abort();
      report.current?.(pointer, null);
    },
    [pointer],
  );
  // The value was cleared elsewhere (reset, the JSON editor): forget the picked file too.
  useEffect(() => {
    if (currentId === null && !inflight.current && picker.current) picker.current.value = '';
  }, [currentId]);

  const finish = (ctrl: AbortController) => {
    if (inflight.current !== ctrl) return;
    inflight.current = null;
    setProgress(null);
    report.current?.(pointer, null);
  };

  const pick = async (file: File | undefined) => {
    if (!file || !upload) return;
    inflight.current?.abort();
    const ctrl = new AbortController();
    inflight.current = ctrl;
    setFailure(null);
    setProgress({ name: file.name, loaded: 0, total: file.size });
    onLocalError?.(pointer, UPLOADING);
    try {
      const f = await upload(file, {
        signal: ctrl.signal,
        onProgress: (loaded, total) => {
          if (inflight.current === ctrl) setProgress({ name: file.name, loaded, total });
        },
      });
      if (inflight.current !== ctrl) return;
      setUploaded(f);
      change.current(pointer, { $file: f.id });
    } catch (err) {
      if (inflight.current !== ctrl || isAbort(err)) return;
      setFailure(`${file.name} was not uploaded: ${err instanceof Error ? err.message : String(err)}`);
      if (picker.current) picker.current.value = '';
    } finally {
      finish(ctrl);
    }
  };

  const cancel = () => {
    const ctrl = inflight.current;
    if (!ctrl) return;
    ctrl.abort();
    finish(ctrl);
    if (picker.current) picker.current.value = '';
  };

  const remove = () => {
    setUploaded(null);
    setFailure(null);
    if (picker.current) picker.current.value = '';
    onChange(pointer, undefined);
  };

  const errs = [...(failure ? [failure] : []), ...(errors[pointer] ?? [])];
  const hint = joinHints(
    schema.description,
    schema.contentMediaType ? `type: ${schema.contentMediaType}` : undefined,
    upload ? undefined : 'the id of an uploaded file',
  );
  const common = {
    id,
    name: pointer,
    disabled,
    'aria-required': required || undefined,
    'aria-invalid': errs.length > 0 || undefined,
    'aria-describedby': describedBy(id, hint, errs),
  };
  const percent = progress && progress.total > 0 ? Math.min(100, Math.round((progress.loaded / progress.total) * 100)) : 0;

  return (
    <FieldShell id={id} label={label} required={required} hint={hint} errors={errs}>
      {upload ? (
        <input {...common} ref={picker} type="file" accept={schema.contentMediaType} onChange={(e) => void pick(e.target.files?.[0])} />
      ) : (
        <input
          {...common}
          type="text"
          className="mono"
          spellCheck={false}
          value={currentId ?? ''}
          onChange={(e) => onChange(pointer, e.target.value.trim() === '' ? undefined : { $file: e.target.value.trim() })}
        />
      )}
      {progress && (
        <div className="progress-row" role="status">
          <progress max={100} value={percent} aria-label={`Uploading ${progress.name}`} />
          <span>
            Uploading {progress.name}… {percent} %
          </span>
          <button type="button" className="btn btn-small" onClick={cancel}>
            Cancel upload
          </button>
        </div>
      )}
      {upload && currentId && !progress && (
        <div className="file-chosen" data-testid="file-chosen">
          <span role="status">
            {uploaded?.id === currentId ? (
              <>
                Uploaded <strong>{uploaded.name}</strong> ({formatBytes(uploaded.size)}, {uploaded.content_type})
              </>
            ) : (
              <>File</>
            )}{' '}
            <code className="muted small">{currentId}</code>
          </span>
          <button type="button" className="btn btn-small" aria-label={`Remove the file of ${label}`} onClick={remove} disabled={disabled}>
            Remove
          </button>
        </div>
      )}
    </FieldShell>
  );
}

export function JsonField({ schema, name, pointer, value, required, errors, onChange, onLocalError, disabled, rows = 4 }: FieldProps & { rows?: number }) {
  const base = useId();
  const id = fieldId(pointer, base);
  const [text, setText] = useState(value === undefined ? '' : JSON.stringify(value, null, 2));
  const [parseError, setParseError] = useState<string | null>(null);
  useEffect(() => {
    setText((t) => {
      try {
        if (t.trim() !== '' && JSON.stringify(JSON.parse(t)) === JSON.stringify(value)) return t;
      } catch {
        return t;
      }
      if (t.trim() === '' && value === undefined) return t;
      return value === undefined ? '' : JSON.stringify(value, null, 2);
    });
  }, [value]);
  const errs = [...(parseError ? [parseError] : []), ...(errors[pointer] ?? [])];
  const hint = joinHints(schema.description, 'JSON', defaultHint(schema));
  return (
    <FieldShell id={id} label={pointer === '' ? 'Input (JSON)' : labelText(schema, name)} required={required} hint={hint} errors={errs}>
      <textarea
        id={id}
        name={pointer || 'input'}
        className="mono"
        rows={rows}
        spellCheck={false}
        value={text}
        disabled={disabled}
        aria-required={required || undefined}
        aria-invalid={errs.length > 0 || undefined}
        aria-describedby={describedBy(id, hint, errs)}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          if (t.trim() === '') {
            setParseError(null);
            onLocalError?.(pointer, null);
            onChange(pointer, undefined);
            return;
          }
          try {
            const parsed: unknown = JSON.parse(t);
            setParseError(null);
            onLocalError?.(pointer, null);
            onChange(pointer, parsed);
          } catch (err) {
            const message = `not valid JSON yet: ${(err as Error).message}`;
            setParseError(message);
            onLocalError?.(pointer, message);
          }
        }}
      />
    </FieldShell>
  );
}
