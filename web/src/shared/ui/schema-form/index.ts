export { SchemaForm, assignViolations, renderedPointers } from './SchemaForm';
export { initialValue, fieldKind, asSchema, isFileSchema, type JsonSchema } from './schema';
export type { UploadFile, UploadOptions, UploadedFile } from './upload';
export { validate, normalizeViolation } from './validate';
