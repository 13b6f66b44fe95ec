#!/usr/bin/env bash
# Refresh web/openapi.json from the switchyard binary, then regenerate the TypeScript types.
# Uses $SWITCHYARD_BIN when set; otherwise builds and runs the workspace's debug binary.
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$web/.." && pwd)"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
if [[ -n "${SWITCHYARD_BIN:-}" ]]; then
  "$SWITCHYARD_BIN" openapi > "$tmp"
else
  (cd "$repo" && cargo run --quiet -p switchyard -- openapi) > "$tmp"
fi
# Canonical form (sorted keys, 2-space indent) so that syncs diff only in what changed.
node -e '
const fs = require("fs");
const sort = (v) => Array.isArray(v) ? v.map(sort) : v && typeof v === "object"
  ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])])) : v;
const doc = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
fs.writeFileSync(process.argv[2], JSON.stringify(sort(doc), null, 2) + "\n");
' "$tmp" "$web/openapi.json"
cd "$web" && npm run --silent gen:api
echo "openapi.json and src/shared/api/schema.ts are up to date"
