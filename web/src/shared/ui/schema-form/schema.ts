// Reading a JSON Schema (2020-12) well enough to build a form from it. Whatever this does not
// understand is edited as raw JSON, so every schema can still be used.
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema | boolean>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema | boolean;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  contentMediaType?: string;
  [keyword: string]: unknown;
}

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'object' | 'array' | 'file' | 'json';

const COMPOSITION = ['oneOf', 'anyOf', 'allOf', '$ref', '$dynamicRef', 'not', 'if', 'patternProperties', 'prefixItems', 'dependentSchemas'];

export function asSchema(s: JsonSchema | boolean | null | undefined): JsonSchema {
  if (s === true || s === undefined || s === null) return {};
  if (s === false) return { not: {} };
  return s;
}

/** The JSON types a schema allows, without `null`, and whether `null` is allowed. */
export function schemaTypes(schema: JsonSchema): { types: string[]; nullable: boolean } {
  const raw = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  return { types: raw.filter((t) => t !== 'null'), nullable: raw.includes('null') };
}

function typeOfValue(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'object') return typeof v;
  return null;
}

const SIMPLE: ReadonlySet<FieldKind> = new Set(['string', 'number', 'integer', 'boolean', 'enum']);

/**
 * A property to fill with an uploaded file's reference (`{"$file": id}`): its schema says
 * `"format": "file"` or has a `contentMediaType`.
 */
export function isFileSchema(schema: JsonSchema): boolean {
  return schema.format === 'file' || typeof schema.contentMediaType === 'string';
}

export function fieldKind(schema: JsonSchema): FieldKind {
  if (isFileSchema(schema)) return 'file';
  if (COMPOSITION.some((k) => k in schema)) return 'json';
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return 'enum';
  if ('const' in schema) return 'enum';
  let { types } = schemaTypes(schema);
  if (types.length === 0) {
    const inferred = typeOfValue(schema.default);
    if (inferred) types = [inferred];
    else if (schema.properties) types = ['object'];
    else if (schema.items !== undefined) types = ['array'];
  }
  if (types.length !== 1) {
    // "integer or number" is just a number.
    if (types.length === 2 && types.includes('integer') && types.includes('number')) return 'number';
    return 'json';
  }
  const t = types[0];
  switch (t) {
    case 'string':
    case 'number':
    case 'integer':
    case 'boolean':
      return t;
    case 'object':
      return schema.properties && Object.keys(schema.properties).length > 0 ? 'object' : 'json';
    case 'array': {
      if (schema.items === undefined || typeof schema.items === 'boolean') return 'json';
      return SIMPLE.has(fieldKind(schema.items)) ? 'array' : 'json';
    }
    default:
      return 'json';
  }
}

export function enumOptions(schema: JsonSchema): unknown[] {
  if (Array.isArray(schema.enum)) return schema.enum;
  if ('const' in schema) return [schema.const];
  return [];
}

/** The value a fresh form starts with: every `default`, nested objects included. */
export function initialValue(schema: JsonSchema): unknown {
  if (schema.default !== undefined) return structuredClone(schema.default);
  if (fieldKind(schema) === 'object') {
    const out: Record<string, unknown> = {};
    for (const [name, sub] of Object.entries(schema.properties ?? {})) {
      const v = initialValue(asSchema(sub));
      if (v !== undefined) out[name] = v;
    }
    return out;
  }
  return undefined;
}

export function isRequired(parent: JsonSchema, name: string): boolean {
  return Array.isArray(parent.required) && parent.required.includes(name);
}
