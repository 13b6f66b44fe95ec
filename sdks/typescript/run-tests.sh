#!/usr/bin/env bash
# Installs the TypeScript SDK's dev dependencies into ./node_modules, type-checks (strict, with
# unused-code checks), lints (ESLint with typescript-eslint's type-aware rules), builds dist/
# and the example worker, and runs the Vitest suite against the real server binary
# ($SWITCHYARD_BIN, default <repo>/target/debug/switchyard).
set -euo pipefail
cd "$(dirname "$0")"

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

echo "== strict type check (tsc --noEmit -p .)"
npx tsc --noEmit -p .
echo "== lint (eslint .)"
npx eslint .
echo "== build (dist/, build/examples/ and build/bench/)"
npm run --silent build
echo "== tests (vitest run)"
npx vitest run
