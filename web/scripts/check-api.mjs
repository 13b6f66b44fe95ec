// Fails when src/shared/api/schema.ts is not what openapi-typescript generates from
// openapi.json, so a server contract change has to be synced (and type-checked) on purpose.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'switchyard-api-'));
const fresh = join(dir, 'schema.ts');
try {
  execFileSync(process.execPath, [join(web, 'node_modules/openapi-typescript/bin/cli.js'), 'openapi.json', '-o', fresh], {
    cwd: web,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const committed = readFileSync(join(web, 'src/shared/api/schema.ts'), 'utf8');
  if (readFileSync(fresh, 'utf8') !== committed) {
    console.error('src/shared/api/schema.ts is stale: run `npm run gen:api` (or scripts/sync-openapi.sh) and commit it.');
    process.exit(1);
  }
  console.log('check:api: src/shared/api/schema.ts matches openapi.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
