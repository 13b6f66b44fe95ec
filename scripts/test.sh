#!/usr/bin/env bash
# Runs every test: Rust (unit, storage conformance, API with the OpenAPI contract check and
# fuzz test, recovery, cluster), the web UI's unit tests, the Python and TypeScript SDKs
# against the real binary, and end-to-end tests in a real browser against the real binary.
#
# PostgreSQL and Redis suites run against TEST_DATABASE_URL / TEST_REDIS_URL, the S3 file
# storage tests against TEST_S3_ENDPOINT (an S3-compatible server with the bucket
# TEST_S3_BUCKET, default switchyard-test; .ci/run starts moto); without them they print
# loudly that they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

web=false
[ -f web/package.json ] && web=true
if $web; then
  echo "==> web: install"
  npm ci --prefix web --no-audit --no-fund
  echo "==> web: unit tests"
  npm test --prefix web
  # Built before the Rust binaries: the debug binary that `cargo test` builds serves
  # web/dist from disk (release builds embed it), and must find it when it is compiled.
  echo "==> web: build"
  npm run build --prefix web
fi

echo "==> cargo test"
cargo test --workspace

# The SDK suites start the binary `cargo test` just built as a real server.
export SWITCHYARD_BIN="$PWD/target/debug/switchyard"
echo "==> Python SDK: ruff, mypy --strict, pytest"
./sdks/python/run-tests.sh
echo "==> TypeScript SDK: tsc --strict, build, vitest"
./sdks/typescript/run-tests.sh
echo "==> SDK protocol conformance: the same scenarios against the Rust, Python and TypeScript workers"
./sdks/conformance/run-tests.sh

if $web; then
  echo "==> web: end-to-end tests (Playwright + /usr/bin/chromium, the binary cargo test built)"
  SWITCHYARD_BIN="$PWD/target/debug/switchyard" npm run e2e --prefix web
fi
echo "==> all tests passed"
