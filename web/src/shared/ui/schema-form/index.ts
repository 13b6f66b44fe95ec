export { SchemaForm, assignViolations, renderedPointers } from './SchemaForm';
export { initialValue, fieldKind, asSchema, type JsonSchema } from './schema';
export { validate, normalizeViolation } from './validate';
