#!/usr/bin/env bash
# Runs every test: Rust (unit, storage conformance, API, recovery), then the web UI's
# unit tests and end-to-end tests in a real browser.
#
# PostgreSQL and Redis suites run against TEST_DATABASE_URL / TEST_REDIS_URL; without
# them they print loudly that they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test"
cargo test --workspace

if [ -f web/package.json ]; then
  echo "==> web: install"
  npm ci --prefix web --no-audit --no-fund
  echo "==> web: unit tests"
  npm test --prefix web
  echo "==> web: build (embedded in the release binary)"
  npm run build --prefix web
  echo "==> release binary for end-to-end tests"
  cargo build --release -p switchyard
  echo "==> web: end-to-end tests (Playwright + /usr/bin/chromium)"
  SWITCHYARD_BIN="$PWD/target/release/switchyard" npm run e2e --prefix web
fi
echo "==> all tests passed"
