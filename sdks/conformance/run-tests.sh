#!/usr/bin/env bash
# The protocol conformance suite: plays scenarios.json against the conformance worker of each
# SDK (Rust, Python, TypeScript), each a real process against the real server ($SWITCHYARD_BIN,
# default <repo>/target/debug/switchyard).
#
# Uses sdks/python's virtualenv (httpx, pytest, ruff, mypy) and builds what is missing: the
# Python SDK into that virtualenv, the TypeScript SDK with its examples, and the Rust worker
# (`cargo test --workspace` has usually built it already; CONFORMANCE_RUST_WORKER overrides).
# Extra arguments go to pytest, e.g. `-k python` or `-k drain`.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

PYTHON="${PYTHON:-python3}"
if [ ! -x ../python/.venv/bin/python ]; then
  "$PYTHON" -m venv ../python/.venv
fi
../python/.venv/bin/python -m pip install --quiet -e '../python[dev]'

echo "== building the TypeScript SDK and its examples"
if [ ! -d ../typescript/node_modules ]; then
  (cd ../typescript && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd ../typescript && npm run --silent build)

if [ -z "${CONFORMANCE_RUST_WORKER:-}" ] && [ ! -x "$root/target/debug/switchyard-conformance-worker" ]; then
  echo "== building the Rust conformance worker"
  (cd "$root" && cargo build -p switchyard-sdk --bin switchyard-conformance-worker)
fi

echo "== ruff check, mypy --strict (the runner)"
../python/.venv/bin/ruff check .
../python/.venv/bin/mypy --strict .
echo "== conformance scenarios (rust, python, typescript)"
../python/.venv/bin/pytest -q "$@"
