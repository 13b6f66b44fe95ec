#!/usr/bin/env bash
# Installs the Python SDK's dev dependencies into sdks/python/.venv, then runs ruff, mypy --strict
# and the tests (which start the real server: SWITCHYARD_BIN, default <repo>/target/debug/switchyard).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "== ruff check"
.venv/bin/ruff check .
echo "== mypy --strict src"
.venv/bin/mypy --strict src
echo "== pytest"
.venv/bin/pytest -q "$@"
