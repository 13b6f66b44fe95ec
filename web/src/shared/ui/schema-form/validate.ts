// Checks what the form can check before sending (the server validates again, and its
// messages are shown the same way). Violations use the server's shape: {path, keyword, message}.
import type { Violation } from '@/shared/api/errors';
import { isFileRef } from '@/shared/lib/files';
import { asSchema, enumOptions, fieldKind, schemaTypes, type JsonSchema } from './schema';
import { childPointer } from './pointer';

function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function validate(schema: JsonSchema, value: unknown, path = ''): Violation[] {
  const out: Violation[] = [];
  const kind = fieldKind(schema);
  if (value === undefined) return out;
  const { nullable } = schemaTypes(schema);
  if (value === null && nullable) return out;

  if (kind === 'enum') {
    const options = enumOptions(schema);
    if (!options.some((o) => jsonEqual(o, value))) out.push({ path, keyword: 'enum', message: `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}` });
    return out;
  }
  if (kind === 'string') {
    if (typeof value !== 'string') return [{ path, keyword: 'type', message: 'must be text' }];
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength)
      out.push({ path, keyword: 'minLength', message: schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters` });
    if (schema.maxLength !== undefined && length > schema.maxLength) out.push({ path, keyword: 'maxLength', message: `must be at most ${schema.maxLength} characters` });
    if (schema.pattern !== undefined) {
      try {
        if (!new RegExp(schema.pattern, 'u').test(value)) out.push({ path, keyword: 'pattern', message: `must match the pattern ${schema.pattern}` });
      } catch {
        // A pattern JavaScript cannot compile: leave it to the server.
      }
    }
    return out;
  }
  if (kind === 'number' || kind === 'integer') {
    if (typeof value !== 'number' || !Number.isFinite(value)) return [{ path, keyword: 'type', message: 'must be a number' }];
    if (kind === 'integer' && !Number.isInteger(value)) out.push({ path, keyword: 'type', message: 'must be a whole number' });
    if (schema.minimum !== undefined && value < schema.minimum) out.push({ path, keyword: 'minimum', message: `must be at least ${schema.minimum}` });
    if (schema.maximum !== undefined && value > schema.maximum) out.push({ path, keyword: 'maximum', message: `must be at most ${schema.maximum}` });
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) out.push({ path, keyword: 'exclusiveMinimum', message: `must be greater than ${schema.exclusiveMinimum}` });
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) out.push({ path, keyword: 'exclusiveMaximum', message: `must be less than ${schema.exclusiveMaximum}` });
    if (schema.multipleOf !== undefined && schema.multipleOf > 0) {
      const q = value / schema.multipleOf;
      if (Math.abs(q - Math.round(q)) > 1e-9) out.push({ path, keyword: 'multipleOf', message: `must be a multiple of ${schema.multipleOf}` });
    }
    return out;
  }
  if (kind === 'file') {
    if (!isFileRef(value)) out.push({ path, keyword: 'type', message: 'must be a file: choose one to upload' });
    return out;
  }
  if (kind === 'boolean') {
    if (typeof value !== 'boolean') out.push({ path, keyword: 'type', message: 'must be true or false' });
    return out;
  }
  if (kind === 'array') {
    if (!Array.isArray(value)) return [{ path, keyword: 'type', message: 'must be a list' }];
    if (schema.minItems !== undefined && value.length < schema.minItems) out.push({ path, keyword: 'minItems', message: `needs at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}` });
    if (schema.maxItems !== undefined && value.length > schema.maxItems) out.push({ path, keyword: 'maxItems', message: `allows at most ${schema.maxItems} item${schema.maxItems === 1 ? '' : 's'}` });
    const items = asSchema(schema.items);
    value.forEach((item, i) => out.push(...validate(items, item, childPointer(path, i))));
    return out;
  }
  if (kind === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [{ path, keyword: 'type', message: 'must be an object' }];
    const obj = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (obj[name] === undefined) out.push({ path: childPointer(path, name), keyword: 'required', message: 'is required' });
    }
    for (const [name, sub] of Object.entries(schema.properties ?? {})) {
      out.push(...validate(asSchema(sub), obj[name], childPointer(path, name)));
    }
    return out;
  }
  return out;
}

/**
 * The server reports a missing required property at the parent (`""`, message
 * `"x" is a required property`): move it onto the property's own field.
 */
export function normalizeViolation(v: Violation): Violation {
  if (v.keyword === 'required') {
    const m = /"([^"]+)" is a required property/.exec(v.message);
    if (m?.[1]) return { ...v, path: childPointer(v.path, m[1]), message: 'is required' };
  }
  return v;
}
