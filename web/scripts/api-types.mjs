// Generates src/shared/api/schema.ts from openapi.json (`node scripts/api-types.mjs`), or with
// `--check` fails when the committed file is not what openapi.json generates.
//
// The server's document reuses operationIds across resources (`list`, `get`, `create`,
// `events`), which OpenAPI forbids and which makes duplicate TypeScript members; repeated
// ids are renamed after their method and path here until the server makes them unique.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

const web = fileURLToPath(new URL('..', import.meta.url));
const target = `${web}src/shared/api/schema.ts`;
const doc = JSON.parse(readFileSync(`${web}openapi.json`, 'utf8'));

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const ops = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => METHODS.includes(method))
    .map(([method, op]) => ({ path, method, op })),
);
const counts = new Map();
for (const { op } of ops) if (op.operationId) counts.set(op.operationId, (counts.get(op.operationId) ?? 0) + 1);
for (const { path, method, op } of ops) {
  if (op.operationId && counts.get(op.operationId) > 1) {
    const name = path
      .replace(/^\/api\/v\d+\//, '')
      .replace(/[{}]/g, '')
      .replace(/[^a-zA-Z0-9]+/g, '_');
    op.operationId = `${method}_${name}`;
  }
}

const ast = await openapiTS(doc, { emptyObjectsUnknown: true, silent: true });
const generated = `${COMMENT_HEADER}// Generated from web/openapi.json by scripts/api-types.mjs.\n\n${astToString(ast)}`;

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    // Missing counts as stale.
  }
  if (committed !== generated) {
    console.error('src/shared/api/schema.ts is stale: run `npm run gen:api` (or scripts/sync-openapi.sh) and commit it.');
    process.exit(1);
  }
  console.log('check:api: src/shared/api/schema.ts matches openapi.json');
} else {
  writeFileSync(target, generated);
  console.log('wrote src/shared/api/schema.ts');
}
